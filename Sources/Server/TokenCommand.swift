import ArgumentParser
import Foundation
import Relay
import Trust

/// `kvb-server token`: a signed watch URL for one topic, valid for a while, like a CDN's signed URL.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a signed watch URL for a topic (relays started with a watch-token key require one).",
        discussion: """
            The key is the relay's: KVB_WATCH_TOKEN_KEY, or the file in --watch-token-key-file /
            KVB_WATCH_TOKEN_KEY_FILE. Example: kvb-server token --topic cam --ttl 1h --base-url https://kvb.example.com
            """
    )

    @Option(help: "The topic the token lets its holder watch.")
    var topic: String

    @Option(help: "How long it is valid: seconds, or with a unit: 90s, 15m, 1h, 7d.")
    var ttl: String = "1h"

    @Option(help: "Where viewers reach the relay.")
    var baseURL: String = "http://127.0.0.1:8080"

    @Option(help: "File holding the watch-token key (env KVB_WATCH_TOKEN_KEY_FILE, or the key in KVB_WATCH_TOKEN_KEY).")
    var watchTokenKeyFile: String?

    @Flag(help: "Print only the token, not the URL.")
    var tokenOnly = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let name = try TopicName(topic)
        guard let seconds = Self.seconds(ttl), seconds > 0 else {
            throw ValidationError("--ttl wants a positive duration such as 90s, 15m, 1h or 7d (got \(ttl))")
        }
        guard let key = try SecurityOptions.secret(environmentValue: environment["KVB_WATCH_TOKEN_KEY"],
                                                   file: watchTokenKeyFile ?? environment["KVB_WATCH_TOKEN_KEY_FILE"], what: "watch-token key")
        else {
            throw ValidationError("no watch-token key: set KVB_WATCH_TOKEN_KEY or --watch-token-key-file (the relay's)")
        }
        let expires = Int64(Date().timeIntervalSince1970) + seconds
        let token = WatchTokens(key: key).token(topic: name.value, expiresAtSeconds: expires)
        if tokenOnly {
            print(token)
            return
        }
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        let encodedTopic = name.value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? name.value
        print("\(base)/watch.html?topic=\(encodedTopic)&token=\(token)")
    }

    /// Seconds in `90`, `90s`, `15m`, `1h`, `7d`.
    static func seconds(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard let last = text.last else { return nil }
        if let unit = units[last] {
            return Int64(text.dropLast()).flatMap { $0.multipliedReportingOverflow(by: unit).overflow ? nil : $0 * unit }
        }
        return Int64(text)
    }
}
