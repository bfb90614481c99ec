import ArgumentParser
import Foundation
import RollupdCore
import RollupdDaemon

/// `rollupd channel test NAME`: a channel checked without a budget.
struct ChannelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channel", abstract: "Webhook channels of the configuration.", subcommands: [ChannelTest.self])
}

struct ChannelTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Send a clearly marked test message to a channel through the real delivery path (signed when the channel is); print the HTTP status and latency.",
        discussion: "The message never enters the outbox and is never retried. Exit 0 on a 2xx answer, 1 otherwise, 78 for a channel the config lacks.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The channel's name (channels.<name> in the config).") var name: String

    func run() async throws {
        let config = try await global.loadConfig()
        guard let channel = config.channels[name] else {
            let known = config.channels.keys.sorted()
            printError("rollupd: config key 'channels.\(name)': no such channel in \(global.config) (channels there: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
            throw ExitStatus.config
        }
        let sender = WebhookSender(connectTimeout: config.alerts.connectTimeout)
        let result = await sender.test(channel, timeout: config.alerts.requestTimeout)
        await sender.shutdown()
        let latency = "\(Int((result.latency.seconds * 1000).rounded())) ms"
        // The URL and secret are never printed: the channel is named, the answer described.
        if let status = result.status {
            print("channel '\(name)' (\(channel.format.rawValue)\(channel.signingSecret == nil ? "" : ", signed")): HTTP \(status) in \(latency)"
                  + (result.bodyStart.isEmpty ? "" : ": \(result.bodyStart)") + " (test message \(result.messageID))")
        } else {
            print("channel '\(name)': no answer after \(latency): \(result.error ?? "unknown error") (test message \(result.messageID))")
        }
        if !result.accepted { throw ExitCode.failure }
    }
}
