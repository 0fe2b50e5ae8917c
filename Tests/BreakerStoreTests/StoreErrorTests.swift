@testable import BreakerStore
import Testing

/// Which of Redis's errors mean "not now" (the store is unavailable: ACQUIRE answers degraded)
/// and which are errors to report.
@Suite struct StoreErrorTests {
    @Test(arguments: [
        "LOADING Redis is loading the dataset in memory", "BUSY Redis is busy running a script",
        "MASTERDOWN Link with MASTER is down", "READONLY You can't write against a read only replica.",
        "TRYAGAIN Multiple keys request during rehashing of slot", "CLUSTERDOWN The cluster is down",
    ])
    func transientRefusalsMakeTheStoreUnavailable(message: String) {
        #expect(StoreError.refused("acquire", message).code == .unavailable)
    }

    @Test func otherRefusalsAreErrors() {
        let e = StoreError.refused("acquire", "ERR Error running script")
        #expect(e.code == .redis)
        #expect(e.message == "Redis refused acquire: ERR Error running script")
    }
}
