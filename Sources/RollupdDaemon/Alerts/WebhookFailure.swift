import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import RollupdCore

/// Why a webhook request got no answer, as a sentence an operator reads in a log line, in
/// last_error and in `rollupd status` ("timed out after 3 s", "connection refused"), never a
/// library's type name (`HTTPClientError.deadlineExceeded`). The URL carries the channel's
/// token, so it is cut out of whatever text a library error holds.
enum WebhookFailure {
    static func sentence(_ error: any Error, timeout: Duration, connectTimeout: Duration, hiding url: String) -> String {
        hide(url, in: describe(error, timeout: timeout, connectTimeout: connectTimeout))
    }

    static func describe(_ error: any Error, timeout: Duration, connectTimeout: Duration) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded: return "timed out after \(seconds(timeout)) (alerts.request_timeout)"
            case .connectTimeout: return "could not connect within \(seconds(connectTimeout)) (alerts.connect_timeout)"
            case .readTimeout, .writeTimeout: return "the endpoint stopped answering mid-request"
            case .remoteConnectionClosed: return "the endpoint closed the connection without answering"
            case .invalidURL, .emptyHost, .emptyScheme: return "the channel's URL is not a valid http or https URL"
            case .cancelled: return "the request was cancelled (shutting down)"
            default: return "the request failed (\(error.shortDescription))"
            }
        }
        if let error = error as? NIOConnectionError {
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "could not resolve the channel's host name" }
            if let first = error.connectionErrors.first { return describe(first.error, timeout: timeout, connectTimeout: connectTimeout) }
            return "could not connect"
        }
        if let error = error as? IOError {
            return "could not connect: \(String(cString: strerror(error.errnoCode)).lowercased())"
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return "could not connect within \(seconds(connectTimeout)) (alerts.connect_timeout)"
        }
        return "the request failed: \(error)"
    }

    /// "3 s", "0.5 s".
    static func seconds(_ duration: Duration) -> String {
        let value = duration.seconds
        return value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    static func hide(_ url: String, in text: String) -> String {
        var text = text
        if let parsed = URL(string: url) {
            for secret in [url, parsed.path, parsed.query ?? ""] where secret.count > 1 {
                text = text.replacingOccurrences(of: secret, with: "<url>")
            }
        }
        return text
    }
}

extension HTTPClientError {
    /// The case name alone ("tlsHandshakeTimeout"), for errors without a sentence of their own.
    var shortDescription: String {
        "\(self)".replacingOccurrences(of: "HTTPClientError.", with: "")
    }
}
