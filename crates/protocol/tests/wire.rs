//! Exact-JSON tests: every message shape of protocol v1, serialized and
//! compared to its literal text, and decoded back.

use huddle_protocol::client::{
    CallJoin, ChatSend, Join, RingReplySend, RingSend, RoomsRequest, SignalSend, TypingSend,
};
use huddle_protocol::codec::{decode_client, decode_server, encode_client, encode_server};
use huddle_protocol::model::{Attachment, CallState, RoomState, RoomSummary, ServerLimits};
use huddle_protocol::signal::{IceCandidate, SdpKind, SessionDescription};
use huddle_protocol::{
    ClientKind, ClientMessage, ErrorCode, IceServer, LeaveReason, Media, Peer, ServerMessage,
    SignalData,
};

fn ada() -> Peer {
    Peer {
        id: "p_7Kq2".into(),
        name: "Ada".into(),
        client: ClientKind::Desktop,
        joined_at: 1763700000000,
        in_call: false,
        media: Media {
            audio: true,
            video: true,
            screen: false,
        },
        hand: false,
    }
}
const ADA: &str = r#"{"id":"p_7Kq2","name":"Ada","client":"desktop","joined_at":1763700000000,"in_call":false,"media":{"audio":true,"video":true,"screen":false}}"#;

/// The `type` a frame carries on the wire.
fn wire_type(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).expect("JSON");
    value["type"].as_str().expect("a type").to_owned()
}

#[track_caller]
fn server(msg: ServerMessage, rid: Option<&str>, json: &str) {
    assert_eq!(encode_server(&msg, rid), json);
    assert_eq!(wire_type(json), msg.type_name(), "{json}");
    let frame = decode_server(json).expect("decodes");
    assert_eq!(frame.message, msg);
    assert_eq!(frame.rid.as_deref(), rid);
}

#[track_caller]
fn client(msg: ClientMessage, rid: Option<&str>, json: &str) {
    assert_eq!(encode_client(&msg, rid), json);
    assert_eq!(wire_type(json), msg.type_name(), "{json}");
    let frame = decode_client(json).expect("decodes");
    assert_eq!(frame.message, msg);
    assert_eq!(frame.rid.as_deref(), rid);
}

fn attachment() -> Attachment {
    Attachment {
        mime: "image/png".into(),
        name: "cat.png".into(),
        data: "iVBORw0KGgo=".into(),
    }
}

#[test]
fn client_messages() {
    client(
        ClientMessage::Rooms(RoomsRequest {
            watch: true,
            token: Some("t".into()),
        }),
        None,
        r#"{"type":"rooms","watch":true,"token":"t"}"#,
    );
    client(
        ClientMessage::Ping,
        Some("r1"),
        r#"{"type":"ping","rid":"r1"}"#,
    );
    client(
        ClientMessage::Join(Join {
            v: 1,
            room: "standup".into(),
            name: "Ada".into(),
            client: ClientKind::Desktop,
            password: Some("pw".into()),
            token: Some("tok".into()),
            resume: Some("res".into()),
            media: Media {
                audio: true,
                video: false,
                screen: false,
            },
        }),
        Some("j"),
        r#"{"type":"join","v":1,"room":"standup","name":"Ada","client":"desktop","password":"pw","token":"tok","resume":"res","media":{"audio":true,"video":false,"screen":false},"rid":"j"}"#,
    );
    client(ClientMessage::Leave, None, r#"{"type":"leave"}"#);
    client(
        ClientMessage::Chat(ChatSend {
            text: "hello".into(),
            to: Some("p_2".into()),
            attachment: Some(attachment()),
        }),
        Some("c1"),
        r#"{"type":"chat","text":"hello","to":"p_2","attachment":{"mime":"image/png","name":"cat.png","data":"iVBORw0KGgo="},"rid":"c1"}"#,
    );
    client(
        ClientMessage::Typing(TypingSend {
            active: true,
            to: None,
        }),
        None,
        r#"{"type":"typing","active":true}"#,
    );
    client(
        ClientMessage::Media(Media {
            audio: true,
            video: false,
            screen: true,
        }),
        None,
        r#"{"type":"media","audio":true,"video":false,"screen":true}"#,
    );
    client(
        ClientMessage::CallJoin(CallJoin { video: true }),
        None,
        r#"{"type":"call_join","video":true}"#,
    );
    client(ClientMessage::CallLeave, None, r#"{"type":"call_leave"}"#);
    client(
        ClientMessage::Ring(RingSend {
            to: "p_2".into(),
            video: false,
        }),
        None,
        r#"{"type":"ring","to":"p_2","video":false}"#,
    );
    client(
        ClientMessage::RingReply(RingReplySend {
            to: "p_1".into(),
            accept: true,
        }),
        None,
        r#"{"type":"ring_reply","to":"p_1","accept":true}"#,
    );
    client(
        ClientMessage::Signal(SignalSend {
            to: "p_2".into(),
            data: SignalData::Sdp {
                sdp: SessionDescription {
                    kind: SdpKind::Offer,
                    sdp: "v=0\r\n".into(),
                },
            },
        }),
        None,
        r#"{"type":"signal","to":"p_2","data":{"sdp":{"type":"offer","sdp":"v=0\r\n"}}}"#,
    );
    client(
        ClientMessage::Signal(SignalSend {
            to: "p_2".into(),
            data: SignalData::Candidate {
                candidate: Some(IceCandidate {
                    candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: Some("uf".into()),
                }),
            },
        }),
        None,
        r#"{"type":"signal","to":"p_2","data":{"candidate":{"candidate":"candidate:1 1 udp 1 192.0.2.1 9 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"uf"}}}"#,
    );
    client(
        ClientMessage::Signal(SignalSend {
            to: "p_2".into(),
            data: SignalData::Candidate { candidate: None },
        }),
        None,
        r#"{"type":"signal","to":"p_2","data":{"candidate":null}}"#,
    );
}

#[test]
fn server_messages() {
    server(
        ServerMessage::Rooms {
            rooms: vec![RoomSummary {
                name: "standup".into(),
                peers: 3,
                in_call: 2,
                locked: false,
            }],
        },
        Some("r"),
        r#"{"type":"rooms","rooms":[{"name":"standup","peers":3,"in_call":2,"locked":false}],"rid":"r"}"#,
    );
    server(
        ServerMessage::Pong,
        Some("k"),
        r#"{"type":"pong","rid":"k"}"#,
    );
    server(
        ServerMessage::Joined {
            self_peer: ada(),
            room: RoomState {
                name: "standup".into(),
                locked: true,
                peers: vec![],
                call: Some(CallState {
                    started_at: 1763700000000,
                    peers: vec!["p_1".into(), "p_2".into()],
                }),
            },
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:stun.example.org:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
                    username: Some("1763786400:p_7Kq2".into()),
                    credential: Some("base64hmac".into()),
                },
            ],
            resume: "opaque token".into(),
            resumed: false,
            limits: ServerLimits {
                max_frame_bytes: 1048576,
                max_chat_chars: 4000,
                max_peers: 8,
                max_attachment_bytes: 524288,
            },
        },
        None,
        &format!(
            r#"{{"type":"joined","self":{ADA},"room":{{"name":"standup","locked":true,"peers":[],"call":{{"started_at":1763700000000,"peers":["p_1","p_2"]}}}},"ice_servers":[{{"urls":["stun:stun.example.org:3478"]}},{{"urls":["turn:turn.example.org:3478?transport=udp"],"username":"1763786400:p_7Kq2","credential":"base64hmac"}}],"resume":"opaque token","resumed":false,"limits":{{"max_frame_bytes":1048576,"max_chat_chars":4000,"max_peers":8,"max_attachment_bytes":524288}}}}"#
        ),
    );
    server(
        ServerMessage::PeerJoined { peer: ada() },
        None,
        &format!(r#"{{"type":"peer_joined","peer":{ADA}}}"#),
    );
    server(
        ServerMessage::PeerUpdated { peer: ada() },
        None,
        &format!(r#"{{"type":"peer_updated","peer":{ADA}}}"#),
    );
    for (reason, text) in [
        (LeaveReason::Left, "left"),
        (LeaveReason::Timeout, "timeout"),
        (LeaveReason::Disconnected, "disconnected"),
        (LeaveReason::Kicked, "kicked"),
    ] {
        server(
            ServerMessage::PeerLeft {
                id: "p_7Kq2".into(),
                reason,
            },
            None,
            &format!(r#"{{"type":"peer_left","id":"p_7Kq2","reason":"{text}"}}"#),
        );
    }
    server(
        ServerMessage::Chat {
            id: "m_42".into(),
            from: "p_1".into(),
            to: Some("p_2".into()),
            text: "hello".into(),
            ts: 1763700000123,
            attachment: Some(attachment()),
        },
        Some("c"),
        r#"{"type":"chat","id":"m_42","from":"p_1","to":"p_2","text":"hello","ts":1763700000123,"attachment":{"mime":"image/png","name":"cat.png","data":"iVBORw0KGgo="},"rid":"c"}"#,
    );
    server(
        ServerMessage::Chat {
            id: "m_1".into(),
            from: "p_1".into(),
            to: None,
            text: "hi".into(),
            ts: 5,
            attachment: None,
        },
        None,
        r#"{"type":"chat","id":"m_1","from":"p_1","text":"hi","ts":5}"#,
    );
    server(
        ServerMessage::Typing {
            from: "p_1".into(),
            active: true,
            to: Some("p_2".into()),
        },
        None,
        r#"{"type":"typing","from":"p_1","active":true,"to":"p_2"}"#,
    );
    server(
        ServerMessage::CallJoined {
            peers: vec!["p_1".into(), "p_2".into()],
            ice_servers: vec![],
        },
        None,
        r#"{"type":"call_joined","peers":["p_1","p_2"]}"#,
    );
    server(
        ServerMessage::CallStarted {
            by: "p_1".into(),
            video: true,
            started_at: 1763700000000,
        },
        None,
        r#"{"type":"call_started","by":"p_1","video":true,"started_at":1763700000000}"#,
    );
    server(
        ServerMessage::CallEnded { duration_ms: 5000 },
        None,
        r#"{"type":"call_ended","duration_ms":5000}"#,
    );
    server(
        ServerMessage::Ring {
            from: "p_1".into(),
            video: true,
        },
        None,
        r#"{"type":"ring","from":"p_1","video":true}"#,
    );
    server(
        ServerMessage::RingReply {
            from: "p_2".into(),
            accept: false,
        },
        None,
        r#"{"type":"ring_reply","from":"p_2","accept":false}"#,
    );
    server(
        ServerMessage::Signal {
            from: "p_1".into(),
            data: SignalData::Sdp {
                sdp: SessionDescription {
                    kind: SdpKind::Rollback,
                    sdp: String::new(),
                },
            },
        },
        None,
        r#"{"type":"signal","from":"p_1","data":{"sdp":{"type":"rollback","sdp":""}}}"#,
    );
    server(
        ServerMessage::error(ErrorCode::RoomFull, "room standup is full (8 peers)"),
        Some("x"),
        r#"{"type":"error","code":"room_full","message":"room standup is full (8 peers)","rid":"x"}"#,
    );
}

#[test]
fn every_error_code_has_its_wire_name() {
    for code in ErrorCode::ALL {
        let json = encode_server(&ServerMessage::error(code, "m"), None);
        assert_eq!(
            json,
            format!(
                r#"{{"type":"error","code":"{}","message":"m"}}"#,
                code.as_str()
            )
        );
    }
}

#[test]
fn join_defaults_and_empty_password() {
    let frame = decode_client(r#"{"type":"join","v":1,"room":"r","name":"n","password":""}"#)
        .expect("decodes");
    let ClientMessage::Join(join) = frame.message else {
        panic!("not a join")
    };
    assert_eq!(join.client, ClientKind::Browser);
    assert_eq!(join.password, None, "an empty password counts as none");
    assert_eq!(join.media, Media::default());
}

#[test]
fn decode_errors_carry_the_right_code_and_rid() {
    let code = |text: &str| {
        decode_client(text)
            .map(|_| ())
            .map_err(|e| (e.code(), e.rid.clone()))
    };
    assert_eq!(code("not json"), Err((ErrorCode::BadMessage, None)));
    assert_eq!(code("[1,2]"), Err((ErrorCode::BadMessage, None)));
    assert_eq!(
        code(r#"{"rid":"a"}"#),
        Err((ErrorCode::BadMessage, Some("a".into())))
    );
    assert_eq!(
        code(r#"{"type":"dance","rid":"a"}"#),
        Err((ErrorCode::UnknownType, Some("a".into())))
    );
    assert_eq!(code(r#"{"type":7}"#), Err((ErrorCode::BadMessage, None)));
    assert_eq!(
        code(&format!(r#"{{"type":"ping","rid":"{}"}}"#, "x".repeat(65))),
        Err((ErrorCode::BadMessage, None))
    );
    assert_eq!(
        code(r#"{"type":"join","room":"r","name":"n"}"#),
        Err((ErrorCode::UnsupportedVersion, None))
    );
    assert_eq!(
        code(r#"{"type":"join","v":2,"room":7}"#),
        Err((ErrorCode::UnsupportedVersion, None))
    );
    assert_eq!(
        code(r#"{"type":"join","v":1,"room":7,"name":"n"}"#),
        Err((ErrorCode::BadMessage, None))
    );
    assert_eq!(
        code(r#"{"type":"chat","rid":"c"}"#),
        Err((ErrorCode::BadMessage, Some("c".into())))
    );
    assert_eq!(
        code(&format!(
            r#"{{"type":"chat","text":"{}"}}"#,
            "é".repeat(4001)
        )),
        Err((ErrorCode::BadMessage, None))
    );
    assert_eq!(
        code(&format!(
            r#"{{"type":"chat","text":"{}"}}"#,
            "é".repeat(4000)
        )),
        Ok(())
    );
    assert_eq!(
        code(r#"{"type":"signal","to":"p","data":{}}"#),
        Err((ErrorCode::BadMessage, None))
    );
    assert_eq!(
        code(r#"{"type":"signal","to":"p","data":{"sdp":{"type":"offer"}}}"#),
        Err((ErrorCode::BadMessage, None))
    );
    assert_eq!(
        code(
            r#"{"type":"signal","to":"p","data":{"sdp":{"type":"offer","sdp":"v=0"},"candidate":null}}"#
        ),
        Err((ErrorCode::BadMessage, None))
    );
    assert_eq!(
        code(r#"{"type":"media","audio":true}"#),
        Err((ErrorCode::BadMessage, None))
    );
    assert_eq!(
        code(r#"{"type":"ping","extra":{"deep":[1,2,3]}}"#),
        Ok(()),
        "unknown fields are ignored"
    );
}
