/// The loopback interface: names and addresses that never leave this machine.
public enum Loopback {
    /// Whether `host` (a name or an IP address, IPv6 without brackets) is loopback:
    /// `localhost`, `127.0.0.0/8` or `::1`. `0.0.0.0` and `::` listen on every interface: not loopback.
    public static func contains(host: String) -> Bool {
        let host = host.lowercased()
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { UInt8($0) != nil }
    }
}
