import Foundation

/// An error answered to an HTTP client in vLLM's shape:
/// `{"error": {"message": …, "type": …, "param": null, "code": <status>}}`.
public struct APIError: Error, CustomStringConvertible, Equatable, Sendable {
    public let status: Int
    public let type: String
    public let message: String
    /// Seconds a refused client should wait before trying again (sent as `Retry-After`).
    public var retryAfter: Int?

    public init(status: Int, type: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.retryAfter = retryAfter
    }

    public static func badRequest(_ message: String) -> APIError { APIError(status: 400, type: "BadRequestError", message) }
    public static func notFound(_ message: String) -> APIError { APIError(status: 404, type: "NotFoundError", message) }
    public static func tooLarge(_ message: String) -> APIError { APIError(status: 413, type: "RequestTooLargeError", message) }
    public static func internalError(_ message: String) -> APIError { APIError(status: 500, type: "InternalServerError", message) }
    public static func unavailable(_ message: String, retryAfter: Int? = nil) -> APIError {
        APIError(status: 503, type: "ServiceUnavailableError", message, retryAfter: retryAfter)
    }
    public static func conflict(_ message: String) -> APIError { APIError(status: 409, type: "ConflictError", message) }
    public static func timeout(_ message: String) -> APIError { APIError(status: 504, type: "TimeoutError", message) }
    /// The server ran out of disk (507, WebDAV's Insufficient Storage).
    public static func insufficientStorage(_ message: String) -> APIError { APIError(status: 507, type: "InsufficientStorageError", message) }

    /// The answer's headers: JSON, and `Retry-After` when set.
    public var headers: [(String, String)] {
        [("Content-Type", "application/json")] + (retryAfter.map { [("Retry-After", String($0))] } ?? [])
    }

    public var description: String { "\(status) \(type): \(message)" }

    public var json: Data {
        let body: [String: Any] = ["error": ["message": message, "type": type, "param": NSNull(), "code": status] as [String: Any]]
        return (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
    }
}
