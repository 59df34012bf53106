/// Arithmetic on numbers read from control-plane documents, which anyone who can write to the
/// topics can set to anything.
extension FixedWidthInteger where Self: SignedInteger {
    /// `self − other`, stopping at the type's bounds instead of trapping: times and counts in
    /// control-plane documents come from the network.
    public func saturatingSubtract(_ other: Self) -> Self {
        let (result, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : result
    }

    /// `self + other`, stopping at the type's bounds instead of trapping.
    public func saturatingAdd(_ other: Self) -> Self {
        let (result, overflow) = addingReportingOverflow(other)
        return overflow ? (other < 0 ? .min : .max) : result
    }
}
