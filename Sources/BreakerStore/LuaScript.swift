/// One breaker script: common.lua's shared part followed by the operation's own file, loaded into
/// Redis once with SCRIPT LOAD and run with EVALSHA.
struct LuaScript: Sendable {
    let name: String
    let source: [UInt8]

    init(name: String, body: [UInt8]) {
        self.name = name
        self.source = PackageResources.common_lua + Array("\n".utf8) + body
    }

    static let acquire = LuaScript(name: "acquire", body: PackageResources.acquire_lua)
    static let report = LuaScript(name: "report", body: PackageResources.report_lua)
    static let fold = LuaScript(name: "fold", body: PackageResources.fold_lua)
    static let state = LuaScript(name: "state", body: PackageResources.state_lua)
    static let control = LuaScript(name: "control", body: PackageResources.control_lua)

    static let all: [LuaScript] = [.acquire, .report, .fold, .state, .control]
}
