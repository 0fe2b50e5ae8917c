import Foundation
import RedisTestSupport

public struct ProcessResult: Sendable {
    public var status: Int32
    public var output: String
    public var error: String
}

/// Runs a program to its end off the cooperative pool, feeding it `input` (its standard input is
/// a pipe closed after `input`). `environment` is added to the test's own, after removing every
/// variable whose name starts with one of `unsettingPrefixes`.
public func runProcess(
    _ path: String, _ arguments: [String], input: String? = nil, environment: [String: String] = [:],
    unsettingPrefixes: [String] = [], timeoutSeconds: Double = 30
) async throws -> ProcessResult {
    try await offPool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        if !environment.isEmpty || !unsettingPrefixes.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for key in env.keys where unsettingPrefixes.contains(where: { key.hasPrefix($0) }) { env[key] = nil }
            env.merge(environment) { _, b in b }
            p.environment = env
        }
        let out = Pipe()
        let err = Pipe()
        let inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try inp.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        return ProcessResult(
            status: p.terminationStatus, output: String(decoding: output, as: UTF8.self),
            error: String(decoding: error, as: UTF8.self))
    }
}
