import FlyingFox
import FlyingSocks
import Foundation
import Synchronization

/// A real HTTP server on 127.0.0.1 that plays a webhook endpoint: it records every request and
/// answers as the test scripts it (200, 500, 429 with Retry-After, slowly, or not at all).
final class WebhookReceiver: Sendable {
    struct Request: Sendable {
        let headers: [String: String]
        let body: Data
        let at: Date
        /// How the receiver answered it.
        let reply: Reply

        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
        var webhookID: String? { headers["webhook-id"] }
        /// The message's id from rollupd's JSON body (`alert_id`; the webhook-id when signed).
        var messageID: String? { json?["alert_id"] as? String }
        /// Answered with a 2xx: the sender may count it delivered.
        var accepted: Bool {
            switch reply {
            case .status(let code): (200..<300).contains(code)
            case .slow: true
            case .tooManyRequests, .silence: false
            }
        }
    }

    enum Reply: Sendable, Equatable {
        case status(Int)
        case tooManyRequests(retryAfterSeconds: Int)
        /// Answers 200, but only after this long.
        case slow(Duration)
        /// Never answers (until the server stops).
        case silence
    }

    private struct State {
        var requests: [Request] = []
        var script: [Reply] = []
        var fallback: Reply = .status(200)
    }

    private let state = Mutex(State())
    private let server: HTTPServer
    private let task: Task<Void, Never>
    let url: String

    private init(server: HTTPServer, task: Task<Void, Never>, url: String) {
        self.server = server
        self.task = task
        self.url = url
    }

    static func start() async throws -> WebhookReceiver {
        let server = HTTPServer(address: try .inet(ip4: "127.0.0.1", port: 0), logger: .disabled)
        let task = Task { _ = try? await server.run() }
        try await server.waitUntilListening()
        guard case .ip4(_, let port) = await server.listeningAddress else { throw CancellationError() }
        let receiver = WebhookReceiver(server: server, task: task, url: "http://127.0.0.1:\(port)/hooks/T000/B000/secret-token")
        await server.appendRoute("POST /hooks/*") { [weak receiver] request in
            guard let receiver else { return HTTPResponse(statusCode: .serviceUnavailable) }
            return await receiver.handle(request)
        }
        return receiver
    }

    /// The replies for the next requests, in order, then `fallback` for every later one.
    func script(_ replies: [Reply], then fallback: Reply = .status(200)) {
        state.withLock {
            $0.script = replies
            $0.fallback = fallback
        }
    }

    var requests: [Request] { state.withLock { $0.requests } }

    /// Waits until at least `count` requests arrived; returns them.
    func waitForRequests(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Request] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let seen = requests
            if seen.count >= count { return seen }
            try await Task.sleep(for: .milliseconds(50))
        }
        return requests
    }

    func stop() async {
        await server.stop(timeout: 0.5)
        task.cancel()
    }

    private func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let body = (try? await request.bodyData) ?? Data()
        var headers: [String: String] = [:]
        for (name, value) in request.headers { headers[name.rawValue.lowercased()] = value }
        let reply = state.withLock { state -> Reply in
            let reply = state.script.isEmpty ? state.fallback : state.script.removeFirst()
            state.requests.append(Request(headers: headers, body: body, at: Date(), reply: reply))
            return reply
        }
        switch reply {
        case .status(let code):
            return HTTPResponse(statusCode: HTTPStatusCode(code, phrase: "scripted"), body: Data("scripted \(code)".utf8))
        case .tooManyRequests(let seconds):
            return HTTPResponse(statusCode: .tooManyRequests, headers: HTTPHeaders([HTTPHeader("Retry-After"): String(seconds)]))
        case .slow(let delay):
            try? await Task.sleep(for: delay)
            return HTTPResponse(statusCode: .ok)
        case .silence:
            try? await Task.sleep(for: .seconds(3600))
            return HTTPResponse(statusCode: .serviceUnavailable)
        }
    }
}
