//! "Did you mean …?" for near-miss names.

/// The candidate closest to `word`, when it is close enough to be a plausible typo.
pub fn did_you_mean<'a, I, S>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + 'a + ?Sized,
{
    // Plausible: a few edits away (transpositions count once), or a shared start (Jaro-Winkler).
    let allowed = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c.as_ref()), strsim::jaro_winkler(word, c.as_ref()), c.as_ref()))
        .filter(|(edits, jw, _)| *edits <= allowed || *jw >= 0.85)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| format!("did you mean `{c}`?"))
}

/// A help line listing what is allowed, used when nothing is close.
pub fn one_of<S: AsRef<str>>(what: &str, candidates: &[S]) -> String {
    if candidates.is_empty() {
        return format!("no {what} is defined");
    }
    let names: Vec<String> = candidates.iter().map(|c| format!("`{}`", c.as_ref())).collect();
    format!("expected one of the {what}: {}", names.join(", "))
}

/// Did-you-mean if something is close, else the list of what is allowed.
pub fn suggest<S: AsRef<str>>(word: &str, what: &str, candidates: &[S]) -> String {
    did_you_mean(word, candidates.iter().map(|c| c.as_ref())).unwrap_or_else(|| one_of(what, candidates))
}

/// Pulls the names out of serde's "unknown field `x`, expected one of `a`, `b`" messages.
pub fn serde_unknown(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("unknown variant `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected: Vec<String> = rest.split('`').skip(1).step_by(2).map(str::to_string).collect();
    Some((word.to_string(), expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_miss_is_suggested_and_far_is_not() {
        assert_eq!(did_you_mean("modles", ["models", "arch", "data"].iter().copied()).as_deref(), Some("did you mean `models`?"));
        assert_eq!(did_you_mean("zzz", ["models", "arch"].iter().copied()), None);
        assert_eq!(did_you_mean("mpl", ["mlp", "cnn"].iter().copied()).as_deref(), Some("did you mean `mlp`?"));
    }

    #[test]
    fn serde_messages_are_understood() {
        let (w, e) = serde_unknown("unknown field `modles`, expected one of `data`, `models`").unwrap();
        assert_eq!(w, "modles");
        assert_eq!(e, vec!["data", "models"]);
        let (w, e) = serde_unknown("unknown variant `fashion`, expected `fashion-mnist` or `blobs`").unwrap();
        assert_eq!(w, "fashion");
        assert_eq!(e, vec!["fashion-mnist", "blobs"]);
    }
}
