//! The provider-neutral quota model every provider parser produces.

use serde::{Deserialize, Serialize};

/// A limit as providers report it: a number, or "no limit" (`-1` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Limit {
    Limited(i64),
    Unlimited,
}

impl Limit {
    /// `-1` means unlimited; any other negative number is not a limit.
    pub fn from_wire(n: i64) -> Option<Limit> {
        match n {
            -1 => Some(Limit::Unlimited),
            n if n >= 0 => Some(Limit::Limited(n)),
            _ => None,
        }
    }

    pub fn value(self) -> Option<i64> {
        match self {
            Limit::Limited(n) => Some(n),
            Limit::Unlimited => None,
        }
    }
}

/// One quota line, normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quota {
    pub name: String,
    pub zone: Option<String>,
    pub used: i64,
    pub limit: Limit,
    pub reserved: Option<i64>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub unit: Option<String>,
}

impl Quota {
    /// A plain counted quota with no extra fields.
    pub fn new(name: impl Into<String>, used: i64, limit: Limit) -> Quota {
        Quota {
            name: name.into(),
            zone: None,
            used,
            limit,
            reserved: None,
            min: None,
            max: None,
            unit: None,
        }
    }

    /// What counts against the limit: `used` plus `reserved` where the provider reports it
    /// (Cinder/EVS holds reserved volumes against the quota until they are created).
    pub fn consumed(&self) -> i64 {
        self.used.saturating_add(self.reserved.unwrap_or(0).max(0))
    }

    /// Identity of a resource across polls.
    pub fn key(&self) -> (&str, Option<&str>) {
        (&self.name, self.zone.as_deref())
    }
}

/// The result of one successful poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// The URL that answered.
    pub endpoint: String,
    pub quotas: Vec<Quota>,
}
