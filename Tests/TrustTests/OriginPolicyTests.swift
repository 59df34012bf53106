import Testing
import Trust

@Suite("Origin allow-list")
struct OriginPolicyTests {
    @Test func browsersFromTheRelayItselfOrLoopbackPass() {
        let policy = OriginPolicy()
        #expect(policy.allows(origin: nil, host: "kvb.example.com"), "no Origin: not a browser")
        #expect(policy.allows(origin: "https://kvb.example.com", host: "kvb.example.com"))
        #expect(policy.allows(origin: "http://KVB.example.com:8080/", host: "kvb.example.com:8080"))
        #expect(policy.allows(origin: "http://127.0.0.1:5000", host: "kvb.example.com"))
        #expect(policy.allows(origin: "http://localhost:3000", host: "kvb.example.com"))
        #expect(policy.allows(origin: "http://[::1]:3000", host: "kvb.example.com"))
    }

    @Test func otherSitesAreRefused() {
        let policy = OriginPolicy()
        #expect(!policy.allows(origin: "https://evil.example", host: "kvb.example.com"))
        #expect(!policy.allows(origin: "https://kvb.example.com.evil.example", host: "kvb.example.com"))
        #expect(!policy.allows(origin: "http://kvb.example.com:9999", host: "kvb.example.com:8080"))
        #expect(!policy.allows(origin: "null", host: "kvb.example.com"))
        #expect(!policy.allows(origin: "http://127.0.0.1.evil.example", host: "kvb.example.com"))
        #expect(!OriginPolicy(allowLoopback: false).allows(origin: "http://127.0.0.1:5000", host: "kvb.example.com"))
    }

    @Test func theAllowListAddsOrigins() {
        let policy = OriginPolicy(allowed: ["https://studio.example.com/"])
        #expect(policy.allows(origin: "https://studio.example.com", host: "kvb.example.com"))
        #expect(!policy.allows(origin: "http://studio.example.com", host: "kvb.example.com"), "scheme matters")
        #expect(OriginPolicy(allowed: ["*"]).allows(origin: "https://anything.example", host: "x"))
    }

    @Test(arguments: [("127.0.0.1", true), ("127.1.2.3", true), ("localhost", true), ("::1", true),
                      ("0.0.0.0", false), ("::", false), ("192.168.1.5", false), ("kvb.example.com", false), ("127.0.0.1.nip.io", false)])
    func loopbackHosts(host: String, loopback: Bool) {
        #expect(Loopback.contains(host: host) == loopback)
    }
}
