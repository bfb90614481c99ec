import Configuration
import Postgres
import Yams

extension RollupdConfig {
    /// Names the built-in sources already use in rollupd.sources.
    static let builtInSourceNames: Set<String> = ["events", "analytics_events"]

    /// `sources.<name>.*`: validated here, once, for `run`, `once`, `check-config` and reloads.
    static func source(_ name: String, reader: ConfigReader) throws(ConfigError) -> SourceDefinition {
        let prefix = "sources.\(name)."
        func text(_ key: String) -> String {
            let fallback = ConfigKeys.sourceKeys.first { $0.name == key }?.defaultValue ?? ""
            return reader.string(forKey: ConfigKey(prefix + key))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? fallback
        }
        guard !builtInSourceNames.contains(name) else {
            throw ConfigError(key: "sources.\(name)", "'\(name)' is a built-in source; give this one another name")
        }
        let tableText = text("table")
        guard !tableText.isEmpty else { throw ConfigError(key: prefix + "table", "source '\(name)' needs a table (schema.table or table)") }
        let table: QualifiedName
        do { table = try QualifiedName(parsing: tableText) } catch {
            throw ConfigError(key: prefix + "table", "\(error)")
        }
        let kindText = text("kind").lowercased()
        guard let kind = SourceDefinition.Kind(rawValue: kindText) else {
            throw ConfigError(key: prefix + "kind", "'\(kindText)' is not one of cost, analytics")
        }
        let id: SQLIdentifier
        do { id = try SQLIdentifier(text("id")) } catch { throw ConfigError(key: prefix + "id", "\(error)") }
        let unitText = text("cost_unit").lowercased()
        guard let unit = SourceDefinition.CostUnit(rawValue: unitText) else {
            throw ConfigError(key: prefix + "cost_unit", "'\(unitText)' is not one of usd, micro_usd")
        }

        let (required, optional) = ConfigKeys.sourceFields[kind]!
        var fields: [String: SourceDefinition.Field] = [:]
        for field in required + optional {
            do { fields[field] = try SourceDefinition.parseField(text(field)) } catch {
                throw ConfigError(key: prefix + field, "\(error) (a column, column->key, =constant, or empty)")
            }
            if required.contains(field), fields[field] == .absent {
                throw ConfigError(key: prefix + field, "a \(kind.rawValue) source must map \(field) (a column, or =constant)")
            }
        }
        // A field of the other kind would be silently ignored: refuse it instead.
        let ownFields = Set(required + optional)
        for other in ConfigKeys.sourceFields.values.flatMap({ $0.required + $0.optional }) where !ownFields.contains(other) {
            if !text(other).isEmpty {
                throw ConfigError(key: prefix + other, "is not a field of a \(kind.rawValue) source")
            }
        }
        return SourceDefinition(name: name, table: table, kind: kind, id: id, fields: fields, costUnit: unit)
    }
}

extension SourceDefinition {
    /// How `check-config` prints it.
    var summary: [(key: String, value: String)] {
        let prefix = "sources.\(name)."
        var lines: [(key: String, value: String)] = [(prefix + "table", table.quoted), (prefix + "kind", kind.rawValue), (prefix + "id", id.quoted)]
        if kind == .cost { lines.append((prefix + "cost_unit", costUnit.rawValue)) }
        for key in fields.keys.sorted() {
            let value: String
            switch fields[key]! {
            case .column(let column): value = column.quoted
            case .jsonKey(let column, let jsonKey): value = "\(column.quoted)->\(jsonKey)"
            case .constant(let constant): value = "=\(constant)"
            case .absent: value = key == "cost_usd" ? "(priced from model_pricing)" : "(not mapped)"
            }
            lines.append((prefix + key, value))
        }
        return lines
    }
}
