//! The receipt as one self-contained HTML page: inline CSS, images as `data:` URIs, no script,
//! no external resource. Every text from the app or UPN is escaped.

use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::{content_note, shown, PodVerification};
use crate::domain::outbox::{CaptureKind, ItemState};
use crate::driver::{CaptureImage, ConsignmentDetail};
use crate::store::captures::Capture;

pub(super) struct Receipt<'a> {
    pub detail: &'a ConsignmentDetail,
    pub pod: &'a Capture,
    /// `None` when retention removed it (after UPN acknowledged it).
    pub signature: Option<&'a CaptureImage>,
    pub photos: &'a [(&'a Capture, Option<CaptureImage>)],
    pub verification: &'a PodVerification,
    pub distance_m: Option<f64>,
    pub generated_at: DateTime<Utc>,
}

const STYLE: &str = "
:root{color-scheme:light;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24}
body{margin:0;background:#f3f4f6}
main{max-width:40rem;margin:0 auto;background:#fff;padding:1.25rem 1rem 2rem}
h1{font-size:1.4rem;margin:0}
h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.06em;color:#5b6470;margin:1.5rem 0 .5rem}
.barcode{font:600 1.15rem ui-monospace,Menlo,Consolas,monospace;margin:.25rem 0 .75rem;word-break:break-all}
.state{display:inline-block;border-radius:1rem;padding:.3rem .75rem;font-weight:600;font-size:.9rem}
.state.sent{background:#dcfce7;color:#14532d}.state.queued{background:#fef3c7;color:#78350f}
.state.attention{background:#fee2e2;color:#7f1d1d}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem .9rem;margin:0}
dt{color:#5b6470}dd{margin:0;overflow-wrap:anywhere}
.name{font-size:1.3rem;font-weight:600;margin:.25rem 0}
.signature{display:block;width:100%;max-width:24rem;height:auto;border:1px solid #d1d5db;border-radius:.5rem;background:#fff;margin:.5rem 0}
.photos{display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.75rem}
figure{margin:0}figure img{width:100%;height:auto;border-radius:.5rem;display:block}
figcaption{font-size:.8rem;color:#5b6470;margin-top:.25rem}
.hash code{display:block;font:.85rem ui-monospace,Menlo,Consolas,monospace;word-break:break-all;background:#f3f4f6;padding:.6rem;border-radius:.4rem}
.ok{color:#14532d;font-weight:600}.bad{color:#7f1d1d;font-weight:600}
.note{font-size:.8rem;color:#5b6470}
footer{margin-top:2rem;font-size:.75rem;color:#5b6470}
";

/// Escapes text for HTML element content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn data_uri(image: &CaptureImage) -> String {
    format!(
        "data:{};base64,{}",
        image.mime,
        base64::engine::general_purpose::STANDARD.encode(&image.bytes)
    )
}

fn kind_name(kind: CaptureKind) -> &'static str {
    match kind {
        CaptureKind::Pod => "Signature",
        CaptureKind::Goods => "Goods",
        CaptureKind::Location => "Location",
        CaptureKind::LeaveSafe => "Leave safe",
    }
}

fn state_badge(c: &Capture) -> (&'static str, String) {
    match c.state {
        ItemState::Sent => (
            "sent",
            format!(
                "Received by UPN{}{}",
                c.sent_at
                    .map(|t| format!(" · {}", shown(t)))
                    .unwrap_or_default(),
                c.upn_reference
                    .as_deref()
                    .map(|r| format!(" · ref {r}"))
                    .unwrap_or_default()
            ),
        ),
        ItemState::NeedsAttention => (
            "attention",
            format!(
                "Needs attention: {}",
                c.last_error.as_deref().unwrap_or("refused by UPN")
            ),
        ),
        _ => ("queued", "Waiting to be sent to UPN".to_string()),
    }
}

fn row(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!(
        "<dt>{}</dt><dd>{}</dd>",
        escape(label),
        escape(value)
    ));
}

pub(super) fn render(r: &Receipt<'_>) -> String {
    let c = &r.detail.consignment;
    let (state_class, state_text) = state_badge(r.pod);
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    out.push_str(&format!(
        "<title>Proof of delivery {}</title><style>{STYLE}</style></head><body><main>",
        escape(&c.barcode)
    ));
    out.push_str("<header><h1>Proof of delivery</h1>");
    out.push_str(&format!("<p class=\"barcode\">{}</p>", escape(&c.barcode)));
    out.push_str(&format!(
        "<span class=\"state {state_class}\">{}</span></header>",
        escape(&state_text)
    ));

    out.push_str("<section><h2>Delivered to</h2><dl>");
    row(&mut out, "Consignee", &c.consignee.name);
    row(&mut out, "Address", &c.address.one_line());
    row(&mut out, "Pallets", &c.pallets.len().to_string());
    row(&mut out, "Shipper", &c.shipper.name);
    out.push_str("</dl></section>");

    out.push_str("<section><h2>Signed for by</h2>");
    out.push_str(&format!(
        "<p class=\"name\">{}</p>",
        escape(r.pod.signed_by.as_deref().unwrap_or(""))
    ));
    match r.signature {
        Some(image) => out.push_str(&format!(
            "<img class=\"signature\" alt=\"Signature of {}\" src=\"{}\">",
            escape(r.pod.signed_by.as_deref().unwrap_or("")),
            data_uri(image)
        )),
        None => out.push_str(&purged_note("signature", r.pod)),
    }
    out.push_str("<dl>");
    row(&mut out, "Time", &shown(r.pod.captured_at));
    let place = match (&r.pod.fix, r.distance_m) {
        (Some(f), Some(d)) => format!(
            "{:.5}, {:.5} (±{:.0} m) · {d:.0} m from the delivery address{}",
            f.fix.lat(),
            f.fix.lon(),
            f.fix.accuracy_m,
            if f.stale { " · GPS fix was stale" } else { "" }
        ),
        _ => "No GPS fix recorded".to_string(),
    };
    row(&mut out, "Place", &place);
    out.push_str("</dl></section>");

    out.push_str(&format!("<section><h2>Photos ({})</h2>", r.photos.len()));
    if r.photos.is_empty() {
        out.push_str("<p class=\"note\">No photos were taken.</p>");
    } else {
        out.push_str("<div class=\"photos\">");
        for (photo, image) in r.photos {
            let (_, state) = state_badge(photo);
            let Some(image) = image else {
                out.push_str(&purged_note(kind_name(photo.kind), photo));
                continue;
            };
            out.push_str(&format!(
                "<figure><img alt=\"{} photo\" src=\"{}\"><figcaption>{} · {} · {}</figcaption></figure>",
                kind_name(photo.kind),
                data_uri(image),
                kind_name(photo.kind),
                escape(&shown(photo.captured_at)),
                escape(&state)
            ));
        }
        out.push_str("</div>");
    }
    out.push_str("</section>");

    let v = r.verification;
    out.push_str("<section class=\"hash\"><h2>Tamper-evident POD hash</h2>");
    out.push_str(&format!(
        "<code>{}</code>",
        escape(v.stored_sha256.as_deref().unwrap_or(&v.recomputed_sha256))
    ));
    out.push_str(&format!(
        "<p class=\"note\">sha256 over the signature, {} photo(s), the name, the time and the place (upn-pod-hash-v1); {}.</p>",
        v.photos_covered,
        content_note(v)
    ));
    if let (true, Some(at)) = (v.intact, v.originals_purged_at) {
        out.push_str(&format!(
            "<p class=\"ok\">✓ Verified against the records on this device: unchanged (originals purged on {}).</p>",
            escape(&shown(at))
        ));
    } else if v.intact {
        out.push_str("<p class=\"ok\">✓ Verified against the files on this device: unchanged.</p>");
    } else {
        out.push_str("<p class=\"bad\">✗ Does not verify:</p><ul>");
        for p in &v.problems {
            out.push_str(&format!("<li>{}</li>", escape(p)));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out.push_str(&format!(
        "<footer>Generated {} by UPN Driver Core {} · capture {}</footer>",
        escape(&shown(r.generated_at)),
        env!("CARGO_PKG_VERSION"),
        escape(&r.pod.id)
    ));
    out.push_str("</main></body></html>\n");
    out
}

/// In place of an image retention removed.
fn purged_note(what: &str, capture: &Capture) -> String {
    let when = capture.purged_at.map(shown).unwrap_or_default();
    format!(
        "<p class=\"note\">The {} image was removed from this device on {} (retention, after UPN acknowledged it); UPN holds it.</p>",
        escape(what),
        escape(&when)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            super::escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
