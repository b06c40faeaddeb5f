import Foundation

/// An error answered to an HTTP client in vLLM's shape:
/// `{"error": {"message": …, "type": …, "param": null, "code": <status>}}`.
public struct APIError: Error, CustomStringConvertible, Equatable, Sendable {
    public let status: Int
    public let type: String
    public let message: String

    public init(status: Int, type: String, _ message: String) {
        self.status = status
        self.type = type
        self.message = message
    }

    public static func badRequest(_ message: String) -> APIError { APIError(status: 400, type: "BadRequestError", message) }
    public static func notFound(_ message: String) -> APIError { APIError(status: 404, type: "NotFoundError", message) }
    public static func tooLarge(_ message: String) -> APIError { APIError(status: 413, type: "RequestTooLargeError", message) }
    public static func internalError(_ message: String) -> APIError { APIError(status: 500, type: "InternalServerError", message) }
    public static func unavailable(_ message: String) -> APIError { APIError(status: 503, type: "ServiceUnavailableError", message) }

    public var description: String { "\(status) \(type): \(message)" }

    public var json: Data {
        let body: [String: Any] = ["error": ["message": message, "type": type, "param": NSNull(), "code": status] as [String: Any]]
        return (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
    }
}
