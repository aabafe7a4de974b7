//! The POD and documents view: what was captured, read back from the device as the app shows
//! it (originals byte for byte, thumbnails through the rendition pipeline).

use upn_core::domain::outbox::CaptureKind;
use upn_core::media::{inspect_photo, MediaLimits};
use upn_core::Error;
use upn_e2e::{driver, photo, signature, sim};
use upn_sim::SimConfig;

#[test]
fn originals_come_back_byte_for_byte_and_thumbnails_are_bounded() {
    let sim = sim(SimConfig {
        seed: 61,
        consignments: 1,
        ..SimConfig::default()
    });
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    let now = chrono::Utc::now();
    let jpeg = photo(7);
    let png = signature(7);
    let shot = t
        .driver
        .add_photo(&barcode, &jpeg, CaptureKind::Goods, now, None)
        .expect("photo");
    let signed = t
        .driver
        .sign(&barcode, &png, "Read Back", now, None)
        .expect("sign");

    let original = t.driver.capture_image(&shot.id, None).expect("original");
    assert_eq!(original.bytes, jpeg);
    assert_eq!(original.mime, "image/jpeg");
    let pod = t.driver.capture_image(&signed.item.id, None).expect("pod");
    assert_eq!(pod.bytes, png);
    assert_eq!(pod.mime, "image/png");

    let thumb = t
        .driver
        .capture_image(&shot.id, Some(400))
        .expect("thumbnail");
    assert_eq!(thumb.mime, "image/jpeg");
    let info = inspect_photo(&thumb.bytes, &MediaLimits::default()).expect("a valid JPEG");
    assert_eq!(info.width.max(info.height), 400, "{info:?}");
    assert!(thumb.bytes.len() < jpeg.len());
    let ink = t
        .driver
        .capture_image(&signed.item.id, Some(200))
        .expect("signature thumbnail");
    assert_eq!(ink.mime, "image/png");
}

#[test]
fn bad_requests_are_typed_and_discarded_images_are_gone() {
    let sim = sim(SimConfig {
        seed: 62,
        consignments: 1,
        ..SimConfig::default()
    });
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    let shot = t
        .driver
        .add_photo(
            &barcode,
            &photo(8),
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
        )
        .expect("photo");
    for side in [0, 63, 4097, u32::MAX] {
        let e = t.driver.capture_image(&shot.id, Some(side)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidInput {
                    field: "long_side",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let e = t.driver.capture_image("no-such-capture", None).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidInput {
                field: "capture id",
                ..
            }
        ),
        "{e:?}"
    );
    t.driver.discard(&shot.id).expect("discard");
    let e = t.driver.capture_image(&shot.id, None).unwrap_err();
    assert!(e.to_string().contains("discarded"), "{e}");
}
