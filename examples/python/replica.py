#!/usr/bin/env python3
"""The Swift example's loop with redis-py: any Redis client is a breakerd client.

    pip install redis
    python3 examples/python/replica.py [--address host:port] [--breaker shipping]
                                       [--failure-rate 0.6] [--interval-ms 100] [--seconds 30]

Acquire a permit, call the flaky dependency, report the outcome with its latency, and serve the
fallback on a deny. When breakerd cannot be reached the call goes ahead unreported (the "allow"
choice; BreakerClient in Swift defaults to a local breaker instead).
"""
import argparse
import random
import time

import redis


class Unavailable(Exception):
    pass


def flaky_quote(order, failure_rate):
    time.sleep(random.uniform(0.005, 0.030))
    if random.random() < failure_rate:
        raise Unavailable()
    return f"quote #{order}: {random.randint(5, 15)}.99"


def run(breakers, name, fallback, operation):
    """ACQUIRE, call, REPORT: PERMIT <permit> <state> | DENY <state> <retry_after_ms>."""
    try:
        reply = breakers.execute_command("ACQUIRE", name).split()
    except redis.ConnectionError:
        return operation()  # no breakerd: allow, report nothing
    if reply[0] == "DENY":
        return fallback()
    started = time.monotonic()
    outcome = "SUCCESS"
    try:
        return operation()
    except Exception:
        outcome = "FAILURE"
        raise
    finally:
        latency_ms = int((time.monotonic() - started) * 1000)
        try:
            breakers.execute_command("REPORT", name, reply[1], outcome, "LATENCY", latency_ms)
        except redis.RedisError:
            pass  # a lost report must not fail the call


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="127.0.0.1:7420")
    parser.add_argument("--breaker", default="shipping")
    parser.add_argument("--failure-rate", type=float, default=0.6)
    parser.add_argument("--interval-ms", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--password")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    breakers = redis.Redis(host=host or "127.0.0.1", port=int(port), password=args.password,
                           decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5)

    counts = {"ok": 0, "failed": 0, "denied": 0}
    last_state = None
    end = time.monotonic() + args.seconds
    order = 0
    print(f"calling '{args.breaker}' through {args.address} for {args.seconds}s, failure rate {args.failure_rate}")
    while time.monotonic() < end:
        order += 1
        try:
            quote = run(breakers, args.breaker, lambda: "cached quote",
                        lambda: flaky_quote(order, args.failure_rate))
            kind = "denied" if quote == "cached quote" else "ok"
            counts[kind] += 1
            print(f"{order}  {kind:<7} -> {quote}")
        except Unavailable:
            counts["failed"] += 1
            print(f"{order}  failed  -> the dependency is unavailable")
        try:
            state = breakers.execute_command("STATE", args.breaker).split()
            if state[1] != last_state:
                last_state = state[1]
                print(f"---- breaker {state[0]} is {last_state} ({' '.join(state[3:5])})")
        except redis.RedisError:
            pass
        time.sleep(args.interval_ms / 1000)
    print(f"done: {counts['ok']} answered, {counts['failed']} failed, {counts['denied']} served from the fallback")


if __name__ == "__main__":
    main()
