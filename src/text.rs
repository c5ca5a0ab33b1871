//! Words for the library's messages.

/// `n` and its noun, plural unless `n` is one ("1 epoch", "3 epochs"): messages read as
/// written.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "epoch"), "1 epoch");
        assert_eq!(count(0, "epoch"), "0 epochs");
        assert_eq!(count(28, "epoch"), "28 epochs");
    }
}
