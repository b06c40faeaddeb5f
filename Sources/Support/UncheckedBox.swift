/// Carries a non-Sendable value into a thread that becomes its only user.
package struct UncheckedBox<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}
