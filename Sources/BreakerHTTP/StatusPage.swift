import NIOHTTP1

/// GET /: the status page (filled in StatusPageHTML.swift).
enum StatusPage {
    static func response() -> HTTPResponse {
        HTTPResponse(
            .ok, contentType: "text/html; charset=utf-8", body: Array(html.utf8),
            headers: [
                // Everything is inline and nothing may load from elsewhere.
                (
                    "Content-Security-Policy",
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"
                ),
                ("Referrer-Policy", "no-referrer"),
            ])
    }
}
