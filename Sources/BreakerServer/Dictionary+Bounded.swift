extension Dictionary {
    /// Keeps a table bounded at `capacity` as `key` comes in: when `key` is new and the table is
    /// full, the entry that `age` says was used longest ago is forgotten. O(n), but only when full.
    mutating func makeRoom<Age: Comparable>(for key: Key, capacity: Int, age: (Value) -> Age) {
        guard self[key] == nil, count >= capacity, let oldest = self.min(by: { age($0.value) < age($1.value) }) else {
            return
        }
        removeValue(forKey: oldest.key)
    }
}
