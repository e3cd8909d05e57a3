//! The decoded packet or frame as one JSON object (`nms decode --json`).

use crate::wire::alertflow::{Frame, FrameBody};
use crate::wire::packet::VERSION;
use crate::wire::{Body, Decoded, Packet, TAG_LEN};

/// The decoded packet as one JSON object: the serde form of [`Decoded`] (NaN values are `null`)
/// plus `version`, `type`, `size` (bytes on the wire), `tag` (hex) and `tag_algorithm`; an ACK
/// also lists every sequence number it `acknowledged`.
pub fn to_json(decoded: &Decoded, bytes: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(decoded)?;
    shorten_f32(&mut value);
    if let Some(object) = value.as_object_mut() {
        let (type_name, keyed) = match decoded {
            Decoded::NetTask(p) => (p.packet_type().name(), p.keyed),
            Decoded::AlertFlow(f) => (frame_type_name(f), f.keyed),
        };
        object.insert("version".into(), VERSION.into());
        object.insert("type".into(), type_name.into());
        object.insert("size".into(), bytes.len().into());
        object.insert("tag".into(), hex::encode(tag_of(bytes)).into());
        object.insert("tag_algorithm".into(), tag_algorithm(keyed).into());
        if let Decoded::NetTask(Packet {
            body: Body::Ack(ack),
            ..
        }) = decoded
        {
            let acknowledged: Vec<u16> = ack.acknowledged().collect();
            object.insert("acknowledged".into(), acknowledged.into());
        }
    }
    Ok(value)
}

/// Writes every number that is exactly an `f32` (the wire's measured values) in that `f32`'s
/// shortest decimal form: `0.42`, not `0.41999998688697815`.
pub(super) fn shorten_f32(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(v) = n.as_f64()
                && f64::from(v as f32) == v
                && let Some(short) = serde_json::Number::from_f64(crate::schema::widen(v as f32))
            {
                *n = short;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(shorten_f32),
        serde_json::Value::Object(map) => map.values_mut().for_each(shorten_f32),
        _ => {}
    }
}

pub(super) fn tag_of(bytes: &[u8]) -> &[u8] {
    &bytes[bytes.len().saturating_sub(TAG_LEN)..]
}

pub(super) fn tag_algorithm(keyed: bool) -> &'static str {
    if keyed {
        "HMAC-SHA-256/96"
    } else {
        "SHA-256/96"
    }
}

pub(super) fn frame_type_name(frame: &Frame) -> &'static str {
    match frame.body {
        FrameBody::Alert(_) => "ALERT",
        FrameBody::AlertAck { .. } => "ALERT_ACK",
    }
}
