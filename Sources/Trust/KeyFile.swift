import Foundation

/// Reads secrets from files: trimmed, never empty, and a warning when others may read them.
public enum KeyFile {
    public static func read(_ path: String, what: String) throws(TrustError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrustError("cannot read the \(what) \(path)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw TrustError("the \(what) \(path) is empty") }
        if let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
            FileHandle.standardError.write(Data("kvb: warning: \(path) can be read by other users (chmod 600 it)\n".utf8))
        }
        return text
    }

    /// Writes a new random key to `path` (mode 600), creating its folder.
    public static func generate(at path: String) throws(TrustError) -> String {
        let key = Secret.randomHex()
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw TrustError("cannot create the folder of \(path): \(error.localizedDescription)")
        }
        guard FileManager.default.createFile(atPath: path, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TrustError("cannot write \(path)")
        }
        return key
    }
}

/// The operator key that consoles and relays share, wherever it is configured.
public enum OperatorKey {
    /// Where `make run` writes it and where consoles look for it by default.
    public static let defaultFile = ".kvb/operator.key"

    /// `KVB_OPERATOR_KEY`, else the key file `file` (or `KVB_OPERATOR_KEY_FILE`), else the default
    /// file if it exists; with where it came from. nil when none is configured.
    public static func load(environment: [String: String], file: String?) throws(TrustError) -> (key: Secret, source: String)? {
        if let value = environment["KVB_OPERATOR_KEY"], !value.isEmpty {
            return (try Secret(strong: value, what: "KVB_OPERATOR_KEY"), "KVB_OPERATOR_KEY")
        }
        if let file = file ?? environment["KVB_OPERATOR_KEY_FILE"] {
            return (try Secret(strong: KeyFile.read(file, what: "operator key file"), what: file), file)
        }
        if FileManager.default.fileExists(atPath: defaultFile) {
            return (try Secret(strong: KeyFile.read(defaultFile, what: "operator key file"), what: defaultFile), defaultFile)
        }
        return nil
    }
}

extension Secret {
    /// A key that must be hard to guess: at least ``minimumStrongLength`` characters.
    public init(strong text: String, what: String) throws(TrustError) {
        guard text.count >= Secret.minimumStrongLength else {
            throw TrustError("\(what) is shorter than \(Secret.minimumStrongLength) characters; make one with `openssl rand -hex 32`")
        }
        self.init(text)
    }
}
