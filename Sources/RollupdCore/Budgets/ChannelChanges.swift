/// Which channels a reload added, changed or removed, by name. Only names: a channel's URL and
/// secret are secrets, and a log line says which channels changed, never how.
public struct ChannelChanges: Sendable, Equatable {
    public var added: [String]
    public var changed: [String]
    public var removed: [String]

    public init(from old: [String: RollupdConfig.Channel], to new: [String: RollupdConfig.Channel]) {
        added = new.keys.filter { old[$0] == nil }.sorted()
        changed = new.keys.filter { old[$0] != nil && old[$0] != new[$0] }.sorted()
        removed = old.keys.filter { new[$0] == nil }.sorted()
    }

    public var isEmpty: Bool { added.isEmpty && changed.isEmpty && removed.isEmpty }

    /// Channels whose waiting alerts deserve an attempt now: the new ones and the fixed ones.
    public var toRetry: [String] { (added + changed).sorted() }

    /// "added finance; changed default; removed ops".
    public var summary: String {
        [("added", added), ("changed", changed), ("removed", removed)]
            .filter { !$0.1.isEmpty }
            .map { "\($0.0) \($0.1.joined(separator: ", "))" }
            .joined(separator: "; ")
    }
}
