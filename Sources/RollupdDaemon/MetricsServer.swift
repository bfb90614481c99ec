import FlyingFox
import FlyingSocks
import Foundation
import Logging
import RollupdCore
import ServiceLifecycle

/// Serves /metrics (Prometheus text format) and /healthz on `metrics.listen`.
public struct MetricsServer: Service, CustomStringConvertible {
    let host: String
    let port: UInt16
    let live: LiveConfig
    let health: HealthState
    let logger: Logger
    /// The backend's text exposition, supplied by the executable that chose the backend.
    let render: @Sendable () -> String

    public var description: String { "MetricsServer" }

    public init(host: String, port: UInt16, live: LiveConfig, health: HealthState, logger: Logger,
                render: @escaping @Sendable () -> String) {
        self.host = host
        self.port = port
        self.live = live
        self.health = health
        self.logger = logger
        self.render = render
    }

    public func run() async throws {
        DaemonMetrics.initialize(channels: Array(live.current.channels.keys))
        // A listener that cannot bind (port taken) is reported and retried; the rollups go on.
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await serve()
                return
            } catch {
                failures += 1
                let wait = Backoff().delay(afterFailures: failures, jitter: Double.random(in: 0..<1))
                if failures == 1 {
                    logger.error("cannot serve /metrics on \(host):\(port): \(error)", metadata: ["retry_in": "\(wait.compactDescription)"])
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            }
        }
    }

    private func serve() async throws {
        let server = HTTPServer(address: try .inet(ip4: host, port: port), logger: .disabled)
        await server.appendRoute("GET /metrics") { [health, render] _ in
            DaemonMetrics.refreshLag(health, now: Date())
            return HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                                body: Data(render().utf8))
        }
        await server.appendRoute("GET /healthz") { [health, live] _ in
            let config = live.current
            let stall = max(Duration.seconds(30), config.rollup.pollInterval * 3 + config.database.statementTimeout)
            let verdict = health.verdict(now: Date(), maxLag: config.metrics.maxLag, stallAfter: stall)
            return HTTPResponse(statusCode: verdict.healthy ? .ok : .serviceUnavailable,
                                headers: [.contentType: "text/plain; charset=utf-8"], body: Data((verdict.reason + "\n").utf8))
        }
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await server.run()
                    } catch where Task.isShuttingDownGracefully || Task.isCancelled || error is CancellationError {
                        // stop() at shutdown ends run() with an error; that is the normal way out.
                    }
                }
                try await server.waitUntilListening()
                let address = Self.describe(await server.listeningAddress)
                logger.notice("serving /metrics and /healthz", metadata: ["address": "\(address)"])
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            Task { await server.stop(timeout: 1) }
        }
    }

    static func describe(_ address: Socket.Address?) -> String {
        guard case .ip4(let ip, let port) = address else { return "\(String(describing: address))" }
        return "\(ip):\(port)"
    }
}
