import Foundation
import RollupdCore

/// The delivery path every message takes: the body in the channel's format, Standard Webhooks
/// headers when the channel has a signing secret, one POST through async-http-client. Alerts
/// (AlertDeliveryService) and `rollupd channel test` both go through it, so a test that passes
/// exercised what alerts will use.
public final class WebhookSender: Sendable {
    let client: WebhookClient

    public init(connectTimeout: Duration) {
        client = WebhookClient(connectTimeout: connectTimeout)
    }

    /// Posts `body` under webhook-id `id` (signed when the channel has a secret).
    func send(_ body: Data, id: String, to channel: RollupdConfig.Channel, timeout: Duration, now: Date = Date()) async -> WebhookResponse {
        let headers = channel.signingSecret.map {
            WebhookSigner(secret: $0).headers(id: id, timestamp: Int64(now.timeIntervalSince1970), body: body)
        } ?? []
        return await client.post(url: channel.url, body: body, headers: headers, timeout: timeout)
    }

    func send(_ batch: AlertBatch, to channel: RollupdConfig.Channel, timeout: Duration) async -> WebhookResponse {
        let body = channel.format == .slack ? AlertMessage.slackBody(batch) : AlertMessage.jsonBody(batch)
        return await send(body, id: batch.messageID, to: channel, timeout: timeout)
    }

    /// What a test message came to; never recorded anywhere but the caller's output.
    public struct TestResult: Sendable {
        public var messageID: String
        public var status: Int?
        /// The failure as a sentence, when no answer came.
        public var error: String?
        /// The start of a non-2xx answer's body.
        public var bodyStart: String
        public var latency: Duration
        public var accepted: Bool { status.map { (200..<300).contains($0) } ?? false }
    }

    /// Sends a clearly marked test message to `channel` (it never enters the outbox).
    public func test(_ channel: RollupdConfig.Channel, timeout: Duration, now: Date = Date()) async -> TestResult {
        let id = ChannelTestMessage.id(channel: channel.name, at: now)
        let body = ChannelTestMessage.body(channel: channel.name, format: channel.format, id: id, at: now)
        let response = await send(body, id: id, to: channel, timeout: timeout, now: now)
        return TestResult(messageID: id, status: response.status, error: response.error, bodyStart: response.bodyStart,
                          latency: response.latency)
    }

    public func shutdown() async {
        await client.shutdown()
    }
}
