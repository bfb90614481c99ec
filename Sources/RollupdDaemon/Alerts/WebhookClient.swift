import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RollupdCore

/// What one POST came to. `error` is set when no response arrived (refused, timed out, TLS).
struct WebhookResponse: Sendable {
    var status: Int?
    var retryAfter: String?
    var error: String?
    /// The start of a non-2xx response's body, for last_error (Slack answers `invalid_payload`, ...).
    var bodyStart: String = ""
    /// From sending the request to the end of the answer (or the failure).
    var latency: Duration = .zero
}

/// POSTs alert bodies through async-http-client. Redirects are not followed: a webhook URL that
/// redirects is misconfigured, and following it would send the body somewhere unreviewed.
final class WebhookClient: Sendable {
    private let client: HTTPClient
    private let connectTimeout: Duration

    init(connectTimeout: Duration) {
        self.connectTimeout = connectTimeout
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .nanoseconds(connectTimeout.nanoseconds))
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func post(url: String, body: Data, headers: [(name: String, value: String)], timeout: Duration) async -> WebhookResponse {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "rollupd")
        for header in headers { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let started = ContinuousClock.now
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
        } catch {
            return WebhookResponse(error: WebhookFailure.sentence(error, timeout: timeout, connectTimeout: connectTimeout, hiding: url),
                                   latency: ContinuousClock.now - started)
        }
        var result = WebhookResponse(status: Int(response.status.code), retryAfter: response.headers.first(name: "retry-after"))
        // Read (and drop) the body so the connection can be reused; keep a little for the record.
        if let buffer = try? await response.body.collect(upTo: 64 * 1024), !(200..<300).contains(Int(response.status.code)) {
            result.bodyStart = String(String(buffer: buffer).prefix(200))
        }
        result.latency = ContinuousClock.now - started
        return result
    }

    func shutdown() async {
        try? await client.shutdown()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
