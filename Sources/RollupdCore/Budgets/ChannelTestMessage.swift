import Foundation

/// What `rollupd channel test NAME` sends: a message no one can take for a budget alert, in the
/// channel's format, so the operator sees it arrive as alerts would.
public enum ChannelTestMessage {
    /// The webhook-id: unique per test, never an alert's (`rollupd-test-<channel>-<epoch ms>`).
    public static func id(channel: String, at now: Date) -> String {
        "rollupd-test-\(channel)-\(Int64(now.timeIntervalSince1970 * 1000))"
    }

    public static func text(channel: String) -> String {
        "Test message from rollupd for channel '\(channel)': not a budget alert. Budget alerts for this channel arrive here like this."
    }

    public static func body(channel: String, format: RollupdConfig.Channel.Format, id: String, at now: Date) -> Data {
        switch format {
        case .slack:
            return AlertMessage.encode(AlertMessage.SlackBody(
                text: text(channel: channel),
                blocks: [
                    .init(type: "section", text: .init(type: "mrkdwn", text: ":white_check_mark: \(AlertMessage.escapeMrkdwn(text(channel: channel)))"),
                          elements: nil),
                    .init(type: "context", text: nil, elements: [.init(type: "mrkdwn", text: AlertMessage.escapeMrkdwn("rollupd · test · \(id)"))]),
                ]))
        case .json:
            return AlertMessage.encode(JSONBody(type: "rollupd.test", alertID: id, channel: channel,
                                                createdAt: ISO8601DateFormatter().string(from: now), text: text(channel: channel)))
        }
    }

    struct JSONBody: Encodable {
        var type: String, alertID: String, channel: String, createdAt: String, text: String
        enum CodingKeys: String, CodingKey {
            case type, alertID = "alert_id", channel, createdAt = "created_at", text
        }
    }
}
