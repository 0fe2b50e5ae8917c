/// The protocol a connection speaks; every connection starts at RESP2 until `HELLO 3`.
public enum RESPVersion: Int, Sendable, Hashable {
    case resp2 = 2
    case resp3 = 3
}
