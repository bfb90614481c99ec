import Postgres
import RollupdCore

/// An error as the log says it, with what to do about it where rollupd knows.
public enum ErrorHints {
    public static func describe(_ error: any Error, config: RollupdConfig) -> String {
        let text = "\(error)"
        if let pgError = error as? PGError, pgError.sqlState == "57014", pgError.message.contains("statement timeout") {
            return text + " (a statement ran past database.statement_timeout, \(config.database.statementTimeout.compactDescription):"
                + " lower rollup.max_rows_per_transaction, now \(config.rollup.maxRowsPerTransaction), so each transaction"
                + " of a pass fits, or raise the timeout)"
        }
        return text
    }
}
