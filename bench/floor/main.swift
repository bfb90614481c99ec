// rss-floor: the memory floor of rollupd's stack, for bench/steady-state.sh.
//
// What any idle daemon built like rollupd holds before its own code does anything: the Swift
// runtime and Foundation linked statically (a time zone looked up, a date formatted, as rollupd's
// config check does), SwiftNIO's event loops serving a socket and async-http-client's client on
// them, one open libpq connection that has run a query, and libsystemd. None of rollupd's modules
// are linked. The benchmark starts it like the daemon (binary evicted from the page cache first),
// leaves it idle, and reports rollupd's RSS against this one measured in the same run.
//
//   rss-floor CONNINFO     prints "ready" once all of the above is up, then sleeps until killed
import AsyncHTTPClient
import CLibPQ
import CSystemd
import Foundation
import NIOCore
import NIOPosix

guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: rss-floor CONNINFO\n".utf8))
    exit(2)
}

// Foundation with ICU data, as rollupd's configuration and alert code use it.
let zone = TimeZone(identifier: "Asia/Kolkata")
let formatter = DateFormatter()
formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
formatter.timeZone = zone
_ = formatter.string(from: Date())

// libpq: connect and run one query (this loads OpenSSL, GSSAPI and LDAP, as in the daemon).
guard let connection = PQconnectdb(CommandLine.arguments[1]), PQstatus(connection) == CONNECTION_OK else {
    FileHandle.standardError.write(Data("rss-floor: cannot connect to PostgreSQL\n".utf8))
    exit(1)
}
PQclear(PQexec(connection, "SELECT 1"))

// SwiftNIO: a listening socket on the shared event loops, and the HTTP client on the same loops.
let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .bind(host: "127.0.0.1", port: 0).get()
let client = HTTPClient(eventLoopGroupProvider: .singleton)

// libsystemd: a no-op outside systemd, but the library is loaded and called.
_ = sd_notify(0, "READY=1")

FileHandle.standardOutput.write(Data("ready\n".utf8))
// Top-level variables live as long as the process: the listener and client stay up while it sleeps.
while true { try await Task.sleep(for: .seconds(3600)) }
