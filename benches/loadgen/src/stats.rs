//! Statistics over runs and messages.

/// The value at fraction `p` of the way through `v`, sorted (0.5: the median);
/// zero for an empty list, so that a run that measured nothing shows as 0.
pub(crate) fn percentile<T: Copy + PartialOrd + Default>(mut v: Vec<T>, p: f64) -> T {
    if v.is_empty() {
        return T::default();
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The median of `v` (zero for an empty list).
pub(crate) fn median<T: Copy + PartialOrd + Default>(v: Vec<T>) -> T {
    percentile(v, 0.5)
}
