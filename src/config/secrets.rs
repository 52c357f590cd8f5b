//! Which settings hold secrets, and masking them: no password, JAAS config or private key may reach
//! logs, `check` output, `/status` or error messages.

/// What a secret value is replaced with wherever it is shown.
pub const MASK: &str = "********";

/// True when the value of `key` (a Java, librdkafka or provider key, any prefix) is a secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("passphrase")
        || key.contains("private.key")
        || key.contains("jaas.config")
        || key.ends_with("ssl_key")
        || key.ends_with("user.info")
        || key.ends_with("ssl.keystore.key")
        || key.ends_with("ssl.key.pem")
        || key.ends_with("ssl_key.pem")
        || key.ends_with("sasl.oauthbearer.config")
        || key.ends_with("token")
}

/// The value as it may be shown to a person: masked when `key` holds a secret.
pub fn mask_if_secret(key: &str, value: &str) -> String {
    if is_secret_key(key) && !value.is_empty() {
        MASK.to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_masks_secrets() {
        let property = crate::config::properties::Property {
            key: "A.ssl.key.password".into(),
            value: "hunter2".into(),
            line: 3,
        };
        let shown = format!("{property:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains(MASK),
            "{shown}"
        );
    }

    #[test]
    fn secrets_are_recognised_under_any_prefix() {
        for key in [
            "ssl.key.password",
            "A.ssl.truststore.password",
            "A->B.source.consumer.sasl.jaas.config",
            "sasl.password",
            "sasl.oauthbearer.client.secret",
            "ssl.keystore.key",
            "ssl.key.pem",
            "B.sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.assertion.private.key.pem",
            "sasl.oauthbearer.assertion.private.key.file",
            "sasl.oauthbearer.client.credentials.client.secret",
        ] {
            assert!(is_secret_key(key), "{key} must be secret");
            assert_eq!(mask_if_secret(key, "hunter2"), MASK);
        }
        for key in [
            "bootstrap.servers",
            "sasl.username",
            "ssl.ca.location",
            "topics",
        ] {
            assert!(!is_secret_key(key), "{key} is not secret");
            assert_eq!(mask_if_secret(key, "x"), "x");
        }
    }
}
