import Foundation
import Postgres
import Testing

/// The real binary talking sd_notify to a real datagram socket, as systemd's would receive it.
@Suite struct SystemdNotifyTests {
    /// A bound AF_UNIX datagram socket; `receive` returns one datagram or nil after `timeout`.
    final class NotifySocket: @unchecked Sendable {
        let path: String
        private let descriptor: Int32

        init(path: String) throws {
            self.path = path
            descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            guard descriptor >= 0 else { throw SetupError("socket() failed") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                buffer.copyBytes(from: Array(path.utf8) + [0])
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0 else { throw SetupError("bind(\(path)) failed: errno \(errno)") }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(descriptor) }

        /// Datagrams received until one contains `text` (returned), or nil at the deadline.
        func waitFor(_ text: String, timeout: Duration) -> String? {
            let deadline = ContinuousClock.now + timeout
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < deadline {
                let count = recv(descriptor, &buffer, buffer.count, 0)
                guard count > 0 else { continue }
                let message = String(decoding: buffer[0..<count], as: UTF8.self)
                if message.contains(text) { return message }
            }
            return nil
        }
    }

    @Test func readyStatusReloadingAndStoppingReachTheNotifySocket() async throws {
        try await withTestDatabaseAsync { database in
            let directory = try TemporaryDirectory()
            // sun_path holds 108 bytes; a temporary directory path fits.
            let socket = try NotifySocket(path: directory.path + "/notify")
            let config = try DaemonConfig.file(in: directory, database: database)
            let daemon = try DaemonProcess(["run", "--config", config], environment: ["NOTIFY_SOCKET": socket.path])

            let ready = try await onOwnThread { socket.waitFor("READY=1", timeout: .seconds(20)) }
            #expect(ready != nil, "no READY=1; stderr: \(daemon.stderrText)")
            let status = try await onOwnThread { socket.waitFor("STATUS=leader", timeout: .seconds(10)) }
            #expect(status?.contains("last pass") == true && status?.contains(" ms (events +") == true, "STATUS: \(status ?? "none")")

            kill(daemon.pid, SIGHUP)
            let reloading = try await onOwnThread { socket.waitFor("RELOADING=1", timeout: .seconds(10)) }
            let monotonic = reloading?.split(separator: "\n").first { $0.hasPrefix("MONOTONIC_USEC=") }
            #expect(monotonic.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) } != nil, "RELOADING: \(reloading ?? "none")")
            let readyAgain = try await onOwnThread { socket.waitFor("READY=1", timeout: .seconds(10)) }
            #expect(readyAgain != nil)

            daemon.terminate()
            let stopping = try await onOwnThread { socket.waitFor("STOPPING=1", timeout: .seconds(10)) }
            #expect(stopping != nil)
            #expect(await daemon.waitForExit(timeout: .seconds(10)) == 0)
        }
    }
}
