//! The deterministic depot data generator: realistic UK pallet-network consignments for a
//! Midlands depot, the same for the same seed and day.

use crate::wire::{WireAddress, WireConsignment, WireLocation, WirePallet, WireParty, WireWindow};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

use crate::rng::SplitMix64;

/// A town the depot delivers to: real postcode area and districts, approximate centre.
#[derive(Debug, Clone, Copy)]
struct Town {
    name: &'static str,
    area: &'static str,
    districts: &'static [u16],
    lat: f64,
    lon: f64,
    /// Ofcom drama-range prefix for phone numbers (see [`phone`]).
    dial: Dial,
    /// Relative share of the depot's deliveries.
    weight: u32,
}

/// Phone numbers use Ofcom's ranges reserved for drama, so a simulator number can never ring a
/// real business: `0121 496 0xxx`, `0115 496 0xxx`, `0116 496 0xxx`, elsewhere `01632 960xxx`.
#[derive(Debug, Clone, Copy)]
enum Dial {
    City(&'static str),
    Fictional,
}

const fn town(
    name: &'static str,
    area: &'static str,
    districts: &'static [u16],
    lat: f64,
    lon: f64,
    dial: Dial,
    weight: u32,
) -> Town {
    Town {
        name,
        area,
        districts,
        lat,
        lon,
        dial,
        weight,
    }
}

use Dial::{City, Fictional};

#[rustfmt::skip]
const TOWNS: &[Town] = &[
    town("Birmingham", "B", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18, 19, 21, 24, 25, 26, 30, 31, 33, 35, 42, 44], 52.4862, -1.8904, City("0121"), 10),
    town("Coventry", "CV", &[1, 2, 3, 4, 5, 6, 7, 8], 52.4068, -1.5197, Fictional, 4),
    town("Leicester", "LE", &[1, 2, 3, 4, 5, 18, 19], 52.6369, -1.1398, City("0116"), 4),
    town("Nottingham", "NG", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 52.9548, -1.1581, City("0115"), 4),
    town("Derby", "DE", &[1, 3, 21, 22, 23, 24, 73], 52.9225, -1.4746, Fictional, 3),
    town("Wolverhampton", "WV", &[1, 2, 3, 4, 6, 10, 11, 13, 14], 52.5862, -2.1288, Fictional, 3),
    town("Stoke-on-Trent", "ST", &[1, 2, 3, 4, 6], 53.0027, -2.1794, Fictional, 3),
    town("Northampton", "NN", &[1, 2, 3, 4, 5], 52.2405, -0.9027, Fictional, 3),
    town("Walsall", "WS", &[1, 2, 3, 4, 5], 52.5860, -1.9829, Fictional, 2),
    town("Dudley", "DY", &[1, 2, 3], 52.5123, -2.0811, Fictional, 2),
    town("Worcester", "WR", &[1, 2, 3, 4, 5], 52.1920, -2.2200, Fictional, 2),
    town("Redditch", "B", &[97, 98], 52.3068, -1.9397, Fictional, 1),
    town("Solihull", "B", &[90, 91, 92], 52.4118, -1.7776, City("0121"), 2),
    town("Nuneaton", "CV", &[10, 11], 52.5230, -1.4652, Fictional, 1),
    town("Rugby", "CV", &[21, 22, 23], 52.3709, -1.2650, Fictional, 1),
    town("Leamington Spa", "CV", &[31, 32], 52.2852, -1.5201, Fictional, 1),
    town("Tamworth", "B", &[77, 78, 79], 52.6339, -1.6910, Fictional, 1),
    town("Lichfield", "WS", &[13, 14], 52.6816, -1.8261, Fictional, 1),
    town("Cannock", "WS", &[11, 12], 52.6910, -2.0310, Fictional, 1),
    town("Stafford", "ST", &[16, 17, 18], 52.8067, -2.1168, Fictional, 1),
    town("Telford", "TF", &[1, 2, 3, 4, 7], 52.6784, -2.4453, Fictional, 2),
    town("Shrewsbury", "SY", &[1, 2, 3], 52.7073, -2.7553, Fictional, 1),
    town("Kidderminster", "DY", &[10, 11], 52.3885, -2.2497, Fictional, 1),
    town("Hereford", "HR", &[1, 2, 4], 52.0565, -2.7160, Fictional, 1),
    town("Burton upon Trent", "DE", &[13, 14, 15], 52.8019, -1.6367, Fictional, 1),
    town("Loughborough", "LE", &[11], 52.7721, -1.2062, Fictional, 1),
    town("Hinckley", "LE", &[10], 52.5413, -1.3725, Fictional, 1),
    town("Mansfield", "NG", &[18, 19, 21], 53.1472, -1.1987, Fictional, 1),
    town("Chesterfield", "S", &[40, 41, 43], 53.2350, -1.4210, Fictional, 1),
    town("Kettering", "NN", &[15, 16], 52.3962, -0.7302, Fictional, 1),
    town("Corby", "NN", &[17, 18], 52.4914, -0.6965, Fictional, 1),
    town("Daventry", "NN", &[11], 52.2565, -1.1620, Fictional, 1),
    town("Banbury", "OX", &[16], 52.0629, -1.3398, Fictional, 1),
    town("Stratford-upon-Avon", "CV", &[37], 52.1917, -1.7083, Fictional, 1),
    town("Crewe", "CW", &[1, 2], 53.0979, -2.4416, Fictional, 1),
    town("Peterborough", "PE", &[1, 2, 3, 4, 7], 52.5695, -0.2405, Fictional, 2),
];

/// The depot's own yard (Hams Hall distribution park, near Coleshill), for `OUT_FOR_DELIVERY`.
const DEPOT_LAT: f64 = 52.5120;
const DEPOT_LON: f64 = -1.7030;

/// Letters allowed in the inward code of a UK postcode (no C, I, K, M, O, V).
#[rustfmt::skip]
const INWARD_LETTERS: &[char] = &[
    'A', 'B', 'D', 'E', 'F', 'G', 'H', 'J', 'L', 'N', 'P', 'Q', 'R', 'S', 'T', 'U', 'W', 'X', 'Y', 'Z',
];

#[rustfmt::skip]
const STREETS: &[&str] = &[
    "Station Road", "High Street", "Bridge Street", "Park Lane", "Church Street", "Mill Lane",
    "Tyburn Road", "Kingsbury Road", "Factory Road", "Wharf Road", "Canal Street", "Forge Lane",
    "Foundry Street", "Watling Street", "Common Lane", "Birch Road", "Heming Road", "Holford Drive",
    "Armstrong Way", "Brunel Road", "Telford Way", "Faraday Drive", "Newton Road", "Victoria Road",
    "Albert Street", "Queensway", "Lancaster Way", "Saxon Way", "Oak Lane", "Willow Road",
    "Meadow Lane", "Brook Street", "Riverside Way", "Coronation Road", "Enterprise Way",
    "Centurion Way", "Merlin Way", "Hawksley Drive", "Quarry Lane", "Granby Avenue",
];

#[rustfmt::skip]
const ESTATE_NAMES: &[&str] = &[
    "Phoenix", "Centurion", "Riverside", "Canalside", "Meadowbank", "Oakfield", "Bridgeway",
    "Heartlands", "Castle", "Kingfisher", "Mercia", "Wharfside", "Sovereign", "Beacon",
    "Trentside", "Greenfield", "Stonebridge", "Ashfield",
];

#[rustfmt::skip]
const ESTATE_KINDS: &[&str] = &[
    "Industrial Estate", "Business Park", "Trading Estate", "Enterprise Park", "Distribution Park",
    "Industrial Park",
];

#[rustfmt::skip]
const COMPANY_NAMES: &[&str] = &[
    "Midland", "Hartley", "Severn", "Arden", "Crown", "Mercia", "Trent", "Cotswold", "Wrekin",
    "Castle", "Forge", "Beacon", "Oakwood", "Sterling", "Kingfisher", "Apex", "Black Country",
    "Chase", "Avon", "Charnwood", "Malvern", "Peak", "Tame", "Dove", "Harrison", "Bradley",
    "Whitmore", "Fenton", "Ashby", "Shaw",
];

#[rustfmt::skip]
const TRADES: &[&str] = &[
    "Fasteners", "Joinery", "Packaging", "Plastics", "Tyres", "Builders Merchants", "Engineering",
    "Catering Supplies", "Flooring", "Print", "Hydraulics", "Electrical Wholesale", "Tiles",
    "Office Supplies", "Garden Supplies", "Auto Parts", "Steel Stockholders", "Timber", "Paints",
    "Bathrooms", "Refrigeration", "Signs", "Metal Finishing", "Pet Supplies", "Brewing",
];

const COMPANY_SUFFIXES: &[(&str, u32)] = &[
    (" Ltd", 6),
    ("", 3),
    (" & Sons", 1),
    (" (UK) Ltd", 1),
    (" Group", 1),
    (" Co", 1),
];

#[rustfmt::skip]
const SHIPPERS: &[&str] = &[
    "Northern Timber Supplies Ltd", "Kent Garden Products Ltd", "Yorkshire Plastics Ltd",
    "Thames Valley Electrical", "Caledonian Paper Mills", "Welsh Slate Products",
    "Humber Chemicals Ltd", "Solent Marine Supplies", "Lancashire Workwear Ltd",
    "Bristol Beverage Co", "Cumbrian Stone Ltd", "Essex Print Finishers", "Tyneside Fabrications",
    "Anglia Agricultural Supplies", "Devon Building Products",
];

const SPECIAL_INSTRUCTIONS: &[&str] = &[
    "Tail-lift required",
    "Call 30 minutes ahead",
    "Forklift on site",
    "No access before 09:00",
    "Goods in at rear of building",
    "Ring bell at gate, ask for goods in",
    "Narrow access - no artics",
    "No pallet truck on site, tail-lift and pump truck required",
    "Closed 12:00-13:00 for lunch",
    "Report to gatehouse on arrival",
    "Height restriction 3.5 m at entrance",
    "Deliver to rear loading bay, door 3",
];

const SERVICES: &[(&str, u32)] = &[
    ("PREMIUM", 55),
    ("ECONOMY", 22),
    ("AM", 10),
    ("TIMED", 10),
    ("SATURDAY", 3),
];

/// Pallet sizes with their share and plausible weight range in kilograms.
const PALLET_SIZES: &[((&str, u32, u32), u32)] = &[
    (("FULL", 150, 1000), 40),
    (("HALF", 80, 500), 30),
    (("QUARTER", 40, 250), 20),
    (("MICRO", 15, 150), 10),
];

const PALLET_COUNTS: &[(usize, u32)] = &[(1, 40), (2, 25), (3, 15), (4, 10), (5, 6), (6, 4)];

/// Where the depot is, as a tracking-event location.
pub fn depot_location(depot: &str) -> WireLocation {
    WireLocation {
        description: Some(format!("UPN depot {depot}, Hams Hall, Coleshill")),
        lat: Some(DEPOT_LAT),
        lon: Some(DEPOT_LON),
    }
}

/// Where a consignment is delivered, as a tracking-event location.
pub fn address_location(c: &WireConsignment) -> WireLocation {
    let a = &c.delivery_address;
    let first = a.lines.first().map(String::as_str).unwrap_or("");
    WireLocation {
        description: Some(format!("{first}, {} {}", a.town, a.postcode)),
        lat: Some(a.lat),
        lon: Some(a.lon),
    }
}

/// `count` consignments for `depot`, delivered on `today`: a pure function of its arguments.
/// Booking times (`updated_at`) fall in the afternoon and evening before `today`, increasing.
pub fn generate(seed: u64, count: usize, depot: &str, today: NaiveDate) -> Vec<WireConsignment> {
    let mut rng = SplitMix64::for_stream(seed, "data");
    let mut number = 1_000_000 + rng.below(4_000_000);
    let booked_from = today
        .pred_opt()
        .unwrap_or(today)
        .and_time(NaiveTime::from_hms_opt(14, 0, 0).unwrap_or(NaiveTime::MIN))
        .and_utc();
    let mut booked_at = booked_from;
    let town_weights: Vec<(usize, u32)> = TOWNS
        .iter()
        .enumerate()
        .map(|(i, t)| (i, t.weight))
        .collect();
    // Bookings spread over the afternoon and evening before (14:00 to 23:00 for up to ~32k).
    let mean_gap = (9 * 3600 / count.max(1) as u64).clamp(2, 240);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        number += 1 + rng.below(9);
        booked_at += Duration::seconds(rng.range(mean_gap / 2, mean_gap) as i64);
        let barcode = format!("UPN{depot}{number:07}");
        out.push(consignment(
            &mut rng,
            barcode,
            &town_weights,
            today,
            booked_at,
        ));
    }
    out
}

fn consignment(
    rng: &mut SplitMix64,
    barcode: String,
    town_weights: &[(usize, u32)],
    today: NaiveDate,
    booked_at: DateTime<Utc>,
) -> WireConsignment {
    let town = TOWNS[rng.weighted(town_weights)];
    let consignee = WireParty {
        name: company_name(rng),
        phone: if rng.chance(0.9) {
            Some(phone(rng, town.dial))
        } else {
            None
        },
    };
    let shipper = WireParty {
        name: rng.pick(SHIPPERS).to_string(),
        phone: if rng.chance(0.5) {
            Some(phone(rng, Fictional))
        } else {
            None
        },
    };
    let delivery_address = address(rng, &town);

    let pallet_count = rng.weighted(PALLET_COUNTS);
    let mut total_tenths: u64 = 0;
    let pallets = (1..=pallet_count)
        .map(|i| {
            let (size, min_kg, max_kg) = rng.weighted(PALLET_SIZES);
            let tenths = rng.range(u64::from(min_kg) * 10, u64::from(max_kg) * 10);
            // Whole half-kilos, as a weighbridge prints them.
            let tenths = tenths - tenths % 5;
            total_tenths += tenths;
            WirePallet {
                barcode: format!("{barcode}{i:02}"),
                size: size.to_string(),
                weight_kg: tenths as f64 / 10.0,
            }
        })
        .collect();

    let service = rng.weighted(SERVICES);
    let delivery_window = match service {
        "AM" => window(8, 12),
        "TIMED" => {
            let from = rng.range(8, 16) as u32;
            window(from, from + 1)
        }
        _ => None,
    };
    let special_instructions = if rng.chance(0.35) {
        Some(rng.pick(SPECIAL_INSTRUCTIONS).to_string())
    } else {
        None
    };

    WireConsignment {
        barcode,
        shipper,
        consignee,
        delivery_address,
        pallets,
        weight_kg: total_tenths as f64 / 10.0,
        service: service.to_string(),
        delivery_window,
        delivery_date: today,
        special_instructions,
        updated_at: booked_at,
    }
}

fn window(from: u32, to: u32) -> Option<WireWindow> {
    Some(WireWindow {
        from: NaiveTime::from_hms_opt(from, 0, 0)?,
        to: NaiveTime::from_hms_opt(to, 0, 0)?,
    })
}

fn company_name(rng: &mut SplitMix64) -> String {
    format!(
        "{} {}{}",
        rng.pick(COMPANY_NAMES),
        rng.pick(TRADES),
        rng.weighted(COMPANY_SUFFIXES)
    )
}

fn phone(rng: &mut SplitMix64, dial: Dial) -> String {
    let local = rng.below(1000);
    match dial {
        City(code) => format!("{code} 496 0{local:03}"),
        Fictional => format!("01632 960{local:03}"),
    }
}

fn postcode(rng: &mut SplitMix64, town: &Town) -> String {
    let district = rng.pick(town.districts);
    format!(
        "{}{} {}{}{}",
        town.area,
        district,
        rng.range(1, 9),
        rng.pick(INWARD_LETTERS),
        rng.pick(INWARD_LETTERS)
    )
}

fn address(rng: &mut SplitMix64, town: &Town) -> WireAddress {
    let street = rng.pick(STREETS);
    let lines = if rng.chance(0.65) {
        vec![
            format!(
                "Unit {}, {} {}",
                rng.range(1, 40),
                rng.pick(ESTATE_NAMES),
                rng.pick(ESTATE_KINDS)
            ),
            street.to_string(),
        ]
    } else {
        vec![format!("{} {street}", rng.range(1, 220))]
    };
    // About 3 km either way around the town centre (0.03 deg latitude, 0.045 deg longitude at 52N).
    let lat = round5(town.lat + rng.jitter(0.03));
    let lon = round5(town.lon + rng.jitter(0.045));
    WireAddress {
        lines,
        town: town.name.to_string(),
        postcode: postcode(rng, town),
        country: "GB".to_string(),
        lat,
        lon,
    }
}

/// Five decimal places: about a metre.
fn round5(x: f64) -> f64 {
    (x * 100_000.0).round() / 100_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
    }

    fn is_postcode(p: &str) -> bool {
        let Some((outward, inward)) = p.split_once(' ') else {
            return false;
        };
        let area: String = outward
            .chars()
            .take_while(char::is_ascii_uppercase)
            .collect();
        let district = &outward[area.len()..];
        let inward: Vec<char> = inward.chars().collect();
        (1..=2).contains(&area.len())
            && (1..=2).contains(&district.len())
            && district.chars().all(|c| c.is_ascii_digit())
            && inward.len() == 3
            && inward[0].is_ascii_digit()
            && inward[1..].iter().all(|c| INWARD_LETTERS.contains(c))
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate(1, 40, "042", day());
        assert_eq!(a, generate(1, 40, "042", day()));
        assert_ne!(a, generate(2, 40, "042", day()));
        assert_eq!(a.len(), 40);
        assert!(generate(1, 0, "042", day()).is_empty());
    }

    #[test]
    fn data_is_plausible() {
        let all = generate(7, 300, "042", day());
        let mut barcodes = std::collections::HashSet::new();
        let mut previous = None;
        for c in &all {
            assert!(c.barcode.starts_with("UPN042"), "{}", c.barcode);
            assert_eq!(c.barcode.len(), 13, "{}", c.barcode);
            assert!(c.barcode[3..].chars().all(|ch| ch.is_ascii_digit()));
            assert!(barcodes.insert(c.barcode.clone()), "unique");
            assert!((1..=6).contains(&c.pallets.len()));
            for (i, p) in c.pallets.iter().enumerate() {
                assert_eq!(p.barcode, format!("{}{:02}", c.barcode, i + 1));
                assert!(["FULL", "HALF", "QUARTER", "MICRO"].contains(&p.size.as_str()));
                assert!(p.weight_kg >= 15.0 && p.weight_kg <= 1000.0);
            }
            let sum: f64 = c.pallets.iter().map(|p| p.weight_kg).sum();
            assert!((sum - c.weight_kg).abs() < 1e-6, "{sum} vs {}", c.weight_kg);
            assert!(
                is_postcode(&c.delivery_address.postcode),
                "{}",
                c.delivery_address.postcode
            );
            assert_eq!(c.delivery_address.country, "GB");
            assert!((51.9..53.4).contains(&c.delivery_address.lat));
            assert!((-2.9..-0.1).contains(&c.delivery_address.lon));
            assert!(!c.delivery_address.lines.is_empty());
            assert!(!c.consignee.name.is_empty() && !c.shipper.name.is_empty());
            if let Some(phone) = &c.consignee.phone {
                assert!(phone.starts_with("01"), "{phone}");
            }
            assert_eq!(c.delivery_date, day());
            match c.service.as_str() {
                "AM" => {
                    let w = c.delivery_window.unwrap();
                    assert_eq!(
                        (w.from.to_string().as_str(), w.to.to_string().as_str()),
                        ("08:00:00", "12:00:00")
                    );
                }
                "TIMED" => {
                    let w = c.delivery_window.unwrap();
                    assert_eq!((w.to - w.from).num_minutes(), 60);
                }
                "PREMIUM" | "ECONOMY" | "SATURDAY" => assert!(c.delivery_window.is_none()),
                other => panic!("unexpected service {other}"),
            }
            assert!(c.updated_at < day().and_hms_opt(0, 0, 0).unwrap().and_utc());
            if let Some(p) = previous {
                assert!(c.updated_at > p, "booking times increase");
            }
            previous = Some(c.updated_at);
        }
        let premium = all.iter().filter(|c| c.service == "PREMIUM").count();
        assert!(premium > all.len() / 3, "most are PREMIUM");
        assert!(all.iter().any(|c| c.special_instructions.is_some()));
        assert!(all.iter().any(|c| c.special_instructions.is_none()));
    }

    #[test]
    fn postcodes_look_british() {
        assert!(is_postcode("B12 9QD"));
        assert!(is_postcode("CV1 2GT"));
        assert!(!is_postcode("B12 9QC"));
        assert!(!is_postcode("B129QD"));
    }
}
