#ifndef BREAKERD_CHIREDIS_SHIM_H
#define BREAKERD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <sys/time.h>

// Swift imports redisContext's fixed-size errstr as a tuple; these accessors hand it over as a
// C string pointer and keep the rest of the context opaque to Swift.
static inline int chiredis_context_err(const redisContext *c) { return c->err; }
static inline const char *chiredis_context_errstr(const redisContext *c) { return c->errstr; }
static inline int chiredis_context_fd(const redisContext *c) { return c->fd; }

// The same for a reader's error (its errstr is a fixed-size array too).
static inline int chiredis_reader_err(const redisReader *r) { return r->err; }
static inline const char *chiredis_reader_errstr(const redisReader *r) { return r->errstr; }

static inline struct timeval chiredis_timeval_ms(long long ms) {
    struct timeval tv;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return tv;
}

#endif
