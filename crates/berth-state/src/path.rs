//! Node paths: validation and the key ranges the backends scan.

use crate::StateError;

/// Checks that `path` is a valid node path to read.
///
/// The rules are ZooKeeper's, so that every backend accepts exactly the same paths:
///
/// - absolute: starts with `/`; `/` alone is the root;
/// - `/`-separated segments, none empty (no `//`, no trailing `/`);
/// - no `.` or `..` segments;
/// - no control characters (U+0000–U+001F, U+007F–U+009F), no private-use characters
///   (U+E000–U+F8FF), none of U+FFF0–U+FFFF and no characters outside the Basic Multilingual
///   Plane (ZooKeeper refuses them).
///
/// # Errors
/// [`StateError::InvalidPath`] naming the path and the rule it breaks.
pub fn validate_path(path: &str) -> Result<(), StateError> {
    if path.is_empty() {
        return Err(StateError::invalid_path(path, "a path may not be empty"));
    }
    if !path.starts_with('/') {
        return Err(StateError::invalid_path(path, "a path must start with '/'"));
    }
    if path == "/" {
        return Ok(());
    }
    for segment in path[1..].split('/') {
        check_segment(segment).map_err(|reason| StateError::invalid_path(path, reason))?;
    }
    Ok(())
}

/// Checks that `path` is a valid node path to write (set or delete): a valid path
/// ([`validate_path`]) other than the root `/` and not under `/zookeeper` (ZooKeeper's own).
///
/// # Errors
/// [`StateError::InvalidPath`] naming the path and the rule it breaks.
pub fn validate_write_path(path: &str) -> Result<(), StateError> {
    validate_path(path)?;
    if path == "/" {
        return Err(StateError::invalid_path(
            path,
            "the root node cannot be written or deleted",
        ));
    }
    if path == "/zookeeper" || path.starts_with("/zookeeper/") {
        return Err(StateError::invalid_path(
            path,
            "the /zookeeper tree is reserved by ZooKeeper",
        ));
    }
    Ok(())
}

/// Checks one path segment (a task name, a property key); returns the broken rule.
pub(crate) fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("empty segments ('//' or a trailing '/') are not allowed".to_owned());
    }
    if segment == "." || segment == ".." {
        return Err(format!("'{segment}' segments are not allowed"));
    }
    for c in segment.chars() {
        if c == '/' {
            return Err("'/' is not allowed in a name".to_owned());
        }
        let u = u32::from(c);
        let forbidden = u <= 0x1F
            || (0x7F..=0x9F).contains(&u)
            || (0xE000..=0xF8FF).contains(&u)
            || (0xFFF0..=0xFFFF).contains(&u)
            || u > 0xFFFF;
        if forbidden {
            return Err(format!("the character U+{u:04X} is not allowed"));
        }
    }
    Ok(())
}

/// The key prefix of all descendants of `path` (`/a` → `/a/`, `/` → `/`).
pub(crate) fn descendant_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    }
}

/// The smallest key greater than every key starting with `prefix`, which must end with `/`:
/// the `/` replaced by `0` (the next character). Keys starting with `prefix` are exactly those
/// in `prefix..range_end(prefix)`.
pub(crate) fn range_end(prefix: &str) -> String {
    let mut end = String::with_capacity(prefix.len());
    end.push_str(&prefix[..prefix.len() - 1]);
    end.push('0');
    end
}

/// The proper ancestors of `path` (not the root, not `path` itself), outermost first:
/// `/a/b/c` → `/a`, `/a/b`.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .skip(1)
        .filter(|&(_, c)| c == '/')
        .map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_outermost_first() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), vec!["/a", "/a/b"]);
        assert_eq!(ancestors("/a").count(), 0);
    }

    #[test]
    fn ranges() {
        assert_eq!(descendant_prefix("/a"), "/a/");
        assert_eq!(range_end("/a/"), "/a0");
        assert_eq!(range_end("/"), "0");
    }

    #[test]
    fn rules() {
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/dcos-service-x/Tasks/hello-0-server/TaskInfo").is_ok());
        assert!(validate_path("/a/hello-0-server:task-status").is_ok());
        for bad in [
            "",
            "a",
            "/a/",
            "//a",
            "/a//b",
            "/a/./b",
            "/..",
            "/a\u{0}",
            "/a\u{1F600}",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?} should be invalid");
        }
        assert!(validate_write_path("/").is_err());
        assert!(validate_write_path("/zookeeper/quota").is_err());
        assert!(validate_write_path("/zookeeperish").is_ok());
    }
}
