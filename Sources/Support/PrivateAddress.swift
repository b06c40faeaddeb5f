import Foundation

/// The addresses `serve --deny-private-addresses` never connects to: loopback, unspecified,
/// private (RFC 1918, IPv6 ULA), shared (CGNAT 100.64/10), link-local and site-local, the IETF and
/// benchmarking blocks, multicast and reserved space, and IPv4 inside IPv6 (mapped, compatible,
/// NAT64, 6to4) when the IPv4 address is one of those.
public enum PrivateAddress {
    /// Whether a 4-byte (IPv4) or 16-byte (IPv6) address, in network order, is refused.
    /// Any other length is refused too.
    public static func contains(_ bytes: [UInt8]) -> Bool {
        switch bytes.count {
        case 4: return containsIPv4(bytes[0], bytes[1], bytes[2])
        case 16:
            let b = bytes
            let zeroPrefix = b[0..<10].allSatisfy { $0 == 0 }
            if zeroPrefix, (b[10] == 0 && b[11] == 0) || (b[10] == 0xFF && b[11] == 0xFF) {
                return containsIPv4(b[12], b[13], b[14])  // ::a.b.c.d, ::ffff:a.b.c.d (also :: and ::1)
            }
            if b[0] == 0x00, b[1] == 0x64, b[2] == 0xFF, b[3] == 0x9B {  // 64:ff9b::/96 and 64:ff9b:1::/48 (NAT64)
                return b[4..<12].allSatisfy { $0 == 0 } ? containsIPv4(b[12], b[13], b[14]) : b[4] == 0 && b[5] == 1
            }
            if b[0] == 0x20, b[1] == 0x02 { return containsIPv4(b[2], b[3], b[4]) }  // 2002::/16 (6to4)
            if b[0] & 0xFE == 0xFC { return true }  // fc00::/7 unique local
            if b[0] == 0xFE, b[1] & 0x80 == 0x80 { return true }  // fe80::/10 link-local, fec0::/10 site-local
            if b[0] == 0xFF { return true }  // multicast
            return false
        default: return true
        }
    }

    /// The same for an address literal (`127.0.0.1`, `::1`); nil when `text` is not one.
    public static func contains(_ text: String) -> Bool? {
        // in_addr / in6_addr hold the address bytes in network order; copied out as they are.
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return contains(withUnsafeBytes(of: &v4) { Array($0) }) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return contains(withUnsafeBytes(of: &v6) { Array($0) }) }
        return nil
    }

    /// An address as text, for messages.
    public static func describe(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16, inet_ntop(family, bytes, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(cString: buffer)
    }

    private static func containsIPv4(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> Bool {
        a == 0 || a == 10 || a == 127  // this network, private, loopback
            || (a == 100 && b & 0xC0 == 64)  // 100.64/10 shared (CGNAT)
            || (a == 169 && b == 254)  // link-local
            || (a == 172 && b & 0xF0 == 16)  // 172.16/12
            || (a == 192 && b == 168)  // 192.168/16
            || (a == 192 && b == 0 && c == 0)  // 192.0.0/24 IETF protocol assignments
            || (a == 198 && b & 0xFE == 18)  // 198.18/15 benchmarking
            || a >= 224  // multicast, reserved, broadcast
    }
}
