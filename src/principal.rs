//! An authenticated caller, ready to be handed upstream: the identity plus the values of the
//! identity headers, computed once (a cached principal costs no formatting per request).

use crate::clock::UnixTime;
use crate::identity::Identity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub identity: Identity,
    /// `X-Auth-Request-Groups`.
    pub groups_header: String,
    /// The access token, when it may be passed upstream.
    pub access_token: Option<String>,
    /// After this instant the principal must not be used.
    pub valid_until: UnixTime,
}

impl Principal {
    pub fn new(identity: Identity, access_token: Option<String>, valid_until: UnixTime) -> Self {
        let groups_header = identity.groups_header();
        Self {
            identity,
            groups_header,
            access_token,
            valid_until,
        }
    }
}

impl crate::verified_cache::ValidUntil for Principal {
    fn valid_until(&self) -> UnixTime {
        self.valid_until
    }
}
