import Crypto
import Foundation

/// Standard Webhooks signatures (https://www.standardwebhooks.com): `webhook-signature` is
/// `v1,` + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")).
struct WebhookSigner {
    private let key: SymmetricKey

    /// A `whsec_<base64>` secret (the spec's format) is decoded; any other text is used as its bytes.
    init(secret: String) {
        if secret.hasPrefix("whsec_"), let decoded = Data(base64Encoded: String(secret.dropFirst(6))) {
            key = SymmetricKey(data: decoded)
        } else {
            key = SymmetricKey(data: Data(secret.utf8))
        }
    }

    func headers(id: String, timestamp: Int64, body: Data) -> [(name: String, value: String)] {
        let signed = Data("\(id).\(timestamp).".utf8) + body
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return [
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", "v1," + Data(mac).base64EncodedString()),
        ]
    }
}
