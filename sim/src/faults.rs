//! Fault injection: the `ROUTE:KIND:PROB` spec language ([`FaultSpec`]), its typed parse error
//! ([`FaultSpecError`]) and the seeded per-request decisions ([`FaultDecider`]).

use std::fmt;
use std::str::FromStr;

use crate::rng::SplitMix64;

/// The UPN routes, as fault specs name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /v1/depots/{depot}/consignments`
    Consignments,
    /// `GET /v1/depots/{depot}/tracking-events`
    Events,
    /// `POST /v1/depots/{depot}/consignments/{barcode}/pod`
    Pod,
    /// `POST /v1/depots/{depot}/consignments/{barcode}/images`
    Image,
}

impl Route {
    pub const ALL: [Route; 4] = [Route::Consignments, Route::Events, Route::Pod, Route::Image];

    /// The name used in fault specs and in `rejected[].route`.
    pub fn name(self) -> &'static str {
        match self {
            Route::Consignments => "consignments",
            Route::Events => "events",
            Route::Pod => "pod",
            Route::Image => "image",
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which requests a fault rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultRoute {
    Only(Route),
    /// `*`: every UPN route.
    Any,
}

impl FaultRoute {
    pub fn matches(self, route: Route) -> bool {
        match self {
            FaultRoute::Any => true,
            FaultRoute::Only(r) => r == route,
        }
    }
}

impl fmt::Display for FaultRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultRoute::Any => f.write_str("*"),
            FaultRoute::Only(r) => f.write_str(r.name()),
        }
    }
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `500`: answered 500 `internal` before the request is handled.
    Status500,
    /// `503`: answered 503 `unavailable` with `Retry-After: 1` before the request is handled.
    Status503,
    /// `429`: answered 429 `rate_limited` with `Retry-After: 1` before the request is handled.
    Status429,
    /// `drop`: the connection is closed before the request is handled, no response.
    Drop,
    /// `lost-response`: handled and committed, then the connection is closed unanswered.
    LostResponse,
    /// `truncate`: handled; the full Content-Length is announced but half the body is sent.
    Truncate,
    /// `garbage`: handled; answered 200 `application/json` with a malformed body.
    Garbage,
    /// `slow`: waits 2 s, then handles normally.
    Slow,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Status500,
        FaultKind::Status503,
        FaultKind::Status429,
        FaultKind::Drop,
        FaultKind::LostResponse,
        FaultKind::Truncate,
        FaultKind::Garbage,
        FaultKind::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Status500 => "500",
            FaultKind::Status503 => "503",
            FaultKind::Status429 => "429",
            FaultKind::Drop => "drop",
            FaultKind::LostResponse => "lost-response",
            FaultKind::Truncate => "truncate",
            FaultKind::Garbage => "garbage",
            FaultKind::Slow => "slow",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `ROUTE:KIND:PROB` item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRule {
    pub route: FaultRoute,
    pub kind: FaultKind,
    /// In `[0, 1]`.
    pub probability: f64,
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.route, self.kind, self.probability)
    }
}

/// A set of fault rules, written `ROUTE:KIND:PROB[,ROUTE:KIND:PROB...]`, e.g.
/// `pod:500:0.5,image:drop:0.2,*:slow:0.05`. The empty string is no faults.
///
/// ROUTE is `consignments|events|pod|image|*`, KIND is
/// `500|503|429|drop|lost-response|truncate|garbage|slow`, PROB is a number in `[0, 1]`.
/// When several rules fire for one request, the first in the spec wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    rules: Vec<FaultRule>,
}

impl FaultSpec {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(rules: Vec<FaultRule>) -> Self {
        Self { rules }
    }

    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The canonical spec text; parses back to the same spec.
impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

const VALID_ROUTES: &str = "consignments, events, pod, image, *";
const VALID_KINDS: &str = "500, 503, 429, drop, lost-response, truncate, garbage, slow";

/// Why a fault spec was refused; the message names the offending item and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultSpecError {
    #[error(
        "fault item {position} is empty (stray comma?); expected ROUTE:KIND:PROB, e.g. pod:500:0.5"
    )]
    EmptyItem { position: usize },
    #[error("fault item {item:?} is not ROUTE:KIND:PROB (three parts separated by ':'), e.g. pod:500:0.5; routes: {VALID_ROUTES}; kinds: {VALID_KINDS}")]
    Shape { item: String },
    #[error("fault item {item:?}: unknown route {route:?}; valid routes: {VALID_ROUTES}")]
    UnknownRoute { item: String, route: String },
    #[error("fault item {item:?}: unknown kind {kind:?}; valid kinds: {VALID_KINDS}")]
    UnknownKind { item: String, kind: String },
    #[error("fault item {item:?}: probability {probability:?} is not a number between 0 and 1")]
    BadProbability { item: String, probability: String },
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(Self::none());
        }
        let mut rules = Vec::new();
        for (i, raw) in s.split(',').enumerate() {
            let item = raw.trim();
            if item.is_empty() {
                return Err(FaultSpecError::EmptyItem { position: i + 1 });
            }
            let parts: Vec<&str> = item.split(':').map(str::trim).collect();
            let [route, kind, probability] = parts.as_slice() else {
                return Err(FaultSpecError::Shape { item: item.into() });
            };
            let route = match *route {
                "*" => FaultRoute::Any,
                name => match Route::ALL.iter().find(|r| r.name() == name) {
                    Some(r) => FaultRoute::Only(*r),
                    None => {
                        return Err(FaultSpecError::UnknownRoute {
                            item: item.into(),
                            route: name.into(),
                        })
                    }
                },
            };
            let kind = FaultKind::ALL
                .iter()
                .copied()
                .find(|k| k.name() == *kind)
                .ok_or_else(|| FaultSpecError::UnknownKind {
                    item: item.into(),
                    kind: (*kind).into(),
                })?;
            let probability = probability
                .parse::<f64>()
                .ok()
                .filter(|p| p.is_finite() && (0.0..=1.0).contains(p))
                .ok_or_else(|| FaultSpecError::BadProbability {
                    item: item.into(),
                    probability: (*probability).into(),
                })?;
            rules.push(FaultRule {
                route,
                kind,
                probability,
            });
        }
        Ok(Self { rules })
    }
}

/// Draws the fault decisions: one PRNG per (seed, request route, rule), one draw per request to
/// that route and rule, so a given seed and request sequence always gives the same faults, and
/// traffic on one route never shifts the decisions of another.
#[derive(Debug, Clone)]
pub struct FaultDecider {
    seed: u64,
    spec: FaultSpec,
    /// `streams[route][rule]`, made when the spec is set.
    streams: Vec<Vec<SplitMix64>>,
}

impl FaultDecider {
    pub fn new(seed: u64, spec: FaultSpec) -> Self {
        let streams = Route::ALL
            .iter()
            .map(|route| {
                (0..spec.rules.len())
                    .map(|i| {
                        let rule = &spec.rules[i];
                        SplitMix64::for_stream(
                            seed,
                            &format!("fault/{}/{i}/{}", route.name(), rule.kind.name()),
                        )
                    })
                    .collect()
            })
            .collect();
        Self {
            seed,
            spec,
            streams,
        }
    }

    /// Replaces the rules and restarts every stream.
    pub fn set(&mut self, spec: FaultSpec) {
        *self = Self::new(self.seed, spec);
    }

    pub fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// The fault for the next request to `route`, if any.
    pub fn decide(&mut self, route: Route) -> Option<FaultKind> {
        let index = Route::ALL.iter().position(|r| *r == route)?;
        let streams = self.streams.get_mut(index)?;
        let mut fired = None;
        for (rule, rng) in self.spec.rules.iter().zip(streams.iter_mut()) {
            if !rule.route.matches(route) {
                continue;
            }
            // Always draw, so one rule firing never shifts the sequence of the next.
            let hit = rng.chance(rule.probability);
            if hit && fired.is_none() {
                fired = Some(rule.kind);
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<FaultSpec, FaultSpecError> {
        s.parse()
    }

    #[test]
    fn parses_valid_specs() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("   ").unwrap().is_empty());
        let spec = parse("pod:500:0.5, image:drop:0.2,*:slow:1,events:lost-response:0").unwrap();
        assert_eq!(spec.rules().len(), 4);
        assert_eq!(
            spec.rules()[0],
            FaultRule {
                route: FaultRoute::Only(Route::Pod),
                kind: FaultKind::Status500,
                probability: 0.5
            }
        );
        assert_eq!(spec.rules()[1].kind, FaultKind::Drop);
        assert_eq!(spec.rules()[2].route, FaultRoute::Any);
        assert_eq!(spec.rules()[2].probability, 1.0);
        assert_eq!(spec.rules()[3].kind, FaultKind::LostResponse);
        for kind in FaultKind::ALL {
            for route in ["consignments", "events", "pod", "image", "*"] {
                let s = format!("{route}:{kind}:0.25");
                let spec = parse(&s).unwrap();
                assert_eq!(spec.rules()[0].kind, kind);
                assert_eq!(spec.to_string(), s, "round trip");
            }
        }
    }

    #[test]
    fn display_round_trips() {
        let spec = parse("pod:503:0.1,*:garbage:1,consignments:truncate:0").unwrap();
        assert_eq!(
            spec.to_string(),
            "pod:503:0.1,*:garbage:1,consignments:truncate:0"
        );
        assert_eq!(parse(&spec.to_string()).unwrap(), spec);
    }

    #[test]
    fn refuses_each_invalid_form_naming_the_item() {
        let e = parse("pod:500:0.5,,image:drop:1").unwrap_err();
        assert_eq!(e, FaultSpecError::EmptyItem { position: 2 });
        assert!(parse("pod:500:0.5,").is_err());

        let e = parse("pod:500").unwrap_err();
        assert!(matches!(e, FaultSpecError::Shape { ref item } if item == "pod:500"));
        assert!(e.to_string().contains("\"pod:500\""));
        assert!(e.to_string().contains("lost-response"));
        assert!(parse("pod:500:0.5:1").is_err());

        let e = parse("pods:500:0.5").unwrap_err();
        assert!(matches!(e, FaultSpecError::UnknownRoute { ref route, .. } if route == "pods"));
        let msg = e.to_string();
        assert!(msg.contains("pods:500:0.5"), "{msg}");
        assert!(msg.contains("consignments, events, pod, image, *"), "{msg}");

        let e = parse("pod:502:0.5").unwrap_err();
        assert!(matches!(e, FaultSpecError::UnknownKind { ref kind, .. } if kind == "502"));
        let msg = e.to_string();
        assert!(msg.contains("pod:502:0.5"), "{msg}");
        assert!(msg.contains("500, 503, 429, drop, lost-response, truncate, garbage, slow"));

        for bad in [
            "pod:500:1.5",
            "pod:500:-0.1",
            "pod:500:half",
            "pod:500:NaN",
            "pod:500:inf",
            "pod:500:",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                matches!(e, FaultSpecError::BadProbability { .. }),
                "{bad}: {e:?}"
            );
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    fn decisions(seed: u64, spec: &str, route: Route, n: usize) -> Vec<Option<FaultKind>> {
        let mut d = FaultDecider::new(seed, parse(spec).unwrap());
        (0..n).map(|_| d.decide(route)).collect()
    }

    #[test]
    fn decisions_are_seeded_and_stable() {
        let a = decisions(9, "pod:500:0.5", Route::Pod, 64);
        assert_eq!(a, decisions(9, "pod:500:0.5", Route::Pod, 64));
        assert_ne!(a, decisions(10, "pod:500:0.5", Route::Pod, 64));
        let hits = a.iter().filter(|d| d.is_some()).count();
        assert!((16..=48).contains(&hits), "{hits}");
        assert!(decisions(9, "pod:500:0.5", Route::Image, 64)
            .iter()
            .all(Option::is_none));
    }

    #[test]
    fn certain_and_impossible_faults() {
        assert!(decisions(1, "*:drop:1", Route::Events, 50)
            .iter()
            .all(|d| *d == Some(FaultKind::Drop)));
        assert!(decisions(1, "*:drop:0", Route::Events, 50)
            .iter()
            .all(Option::is_none));
        // The first rule that fires wins.
        assert!(decisions(1, "pod:503:1,pod:429:1", Route::Pod, 5)
            .iter()
            .all(|d| *d == Some(FaultKind::Status503)));
    }

    #[test]
    fn routes_draw_independently() {
        let spec = "*:500:0.5";
        let alone = decisions(3, spec, Route::Pod, 32);
        let mut d = FaultDecider::new(3, parse(spec).unwrap());
        let mut interleaved = Vec::new();
        for _ in 0..32 {
            d.decide(Route::Image);
            interleaved.push(d.decide(Route::Pod));
        }
        assert_eq!(alone, interleaved);
    }
}
