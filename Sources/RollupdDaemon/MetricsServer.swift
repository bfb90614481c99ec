import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import RollupdCore
import ServiceLifecycle

/// Serves /metrics (Prometheus text format) and /healthz on `metrics.listen`.
///
/// A plain HTTP/1.1 listener on SwiftNIO, which the webhook client already brings: two GET
/// routes need no framework, and the HTTP server library this replaced linked libcurl into the
/// daemon through FoundationNetworking (2.9 MiB resident; bench/README.md, Memory).
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
                // At shutdown the accept loop and open (keep-alive) connections are cancelled,
                // which closes them: a scrape cut short is harmless.
                try await cancelWhenGracefulShutdown { try await serve() }
                return
            } catch where Task.isShuttingDownGracefully || Task.isCancelled {
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
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: Int(port)) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        logger.notice("serving /metrics and /healthz", metadata: ["address": "\(Self.describe(listener.channel.localAddress))"])
        try await withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask { [self] in
                        // A client that goes away mid-request is its own problem, not the daemon's.
                        try? await answer(on: connection)
                    }
                }
            }
        }
    }

    /// Answers each request of one connection in turn, keeping it open while the client asks to.
    private func answer(on connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async throws {
        try await connection.executeThenClose { requests, responses in
            var head: HTTPRequestHead?
            for try await part in requests {
                switch part {
                case .head(let received):
                    head = received
                case .body:
                    continue  // both routes are GETs; a body is read and ignored
                case .end:
                    guard let request = head else { continue }
                    head = nil
                    let reply = respond(to: request)
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: reply.contentType)
                    headers.add(name: "Content-Length", value: String(reply.body.utf8.count))
                    if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
                    try await responses.write(.head(HTTPResponseHead(version: request.version, status: reply.status, headers: headers)))
                    if request.method != .HEAD {
                        try await responses.write(.body(.byteBuffer(ByteBuffer(string: reply.body))))
                    }
                    try await responses.write(.end(nil))
                    if !request.isKeepAlive { return }
                }
            }
        }
    }

    struct Reply {
        var status: HTTPResponseStatus
        var contentType = "text/plain; charset=utf-8"
        var body: String
    }

    func respond(to request: HTTPRequestHead) -> Reply {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard path == "/metrics" || path == "/healthz" else { return Reply(status: .notFound, body: "not found\n") }
        guard request.method == .GET || request.method == .HEAD else {
            return Reply(status: .methodNotAllowed, body: "only GET\n")
        }
        if path == "/metrics" {
            DaemonMetrics.refreshLag(health, now: Date())
            return Reply(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: render())
        }
        let config = live.current
        let stall = max(Duration.seconds(30), config.rollup.pollInterval * 3 + config.database.statementTimeout)
        let verdict = health.verdict(now: Date(), maxLag: config.metrics.maxLag, stallAfter: stall)
        return Reply(status: verdict.healthy ? .ok : .serviceUnavailable, body: verdict.reason + "\n")
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "\(String(describing: address))" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
