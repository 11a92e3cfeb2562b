//! Object storage, queues and registries through HTTP, against MinIO,
//! RabbitMQ and the local OCI registry.

use crate::common::{Server, assert_error, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn objects_stream_up_and_down() {
    let s = Server::start();
    let bucket = kubepkg_testenv::unique_name("http");
    let (status, v) = s
        .admin(
            Method::POST,
            "/object-stores/default/buckets",
            Some(json!({"name": bucket})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Larger than the 64 KiB body limit: uploads stream past it.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let path = format!("/object-stores/default/buckets/{bucket}/objects/dir/data.bin");
    let (status, v) = send(
        s.req(Method::PUT, &path, Some(&s.admin))
            .header("content-type", "application/octet-stream")
            .body(data.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["size"], 300_000);
    let (_, v) = s
        .admin(
            Method::GET,
            &format!("/object-stores/default/buckets/{bucket}/objects?prefix=dir/"),
            None,
        )
        .await;
    assert_eq!(v["data"]["objects"][0]["key"], "dir/data.bin", "{v}");
    let resp = s
        .req(Method::GET, &path, Some(&s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], "300000");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    let (status, _) = s.admin(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = s.admin(Method::GET, &path, None).await;
    assert_error(status, &v, 404, "a deleted object");
}

#[tokio::test]
async fn a_message_is_published_received_and_acknowledged() {
    let s = Server::start();
    let queue = kubepkg_testenv::unique_name("http-q");
    let (status, v) = s
        .admin(
            Method::POST,
            "/message-queues/default/queues",
            Some(json!({"name": queue, "durable": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .admin(
            Method::POST,
            "/message-queues/default/publish",
            Some(json!({"routing_key": queue, "body": "hello", "message_id": "m-1", "headers": {"x": "1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let receive = format!("/message-queues/default/queues/{queue}/receive");
    let (status, v) = s.admin(Method::POST, &receive, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["body"], "hello");
    assert_eq!(v["data"]["message_id"], "m-1");
    assert_eq!(v["data"]["headers"]["x"], "1");
    // Acknowledged: nothing is left.
    let (status, v) = s
        .admin(Method::POST, &receive, Some(json!({"wait_secs": 1})))
        .await;
    assert_error(status, &v, 404, "an empty queue");
}

#[tokio::test]
async fn registry_routes_list_the_local_registry() {
    let s = Server::start();
    let (_, v) = s.admin(Method::GET, "/registries", None).await;
    assert_eq!(v["data"][0]["name"], "local", "{v}");
    let (status, v) = s
        .admin(Method::GET, "/registries/local/repositories", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["data"].is_array());
    let (status, v) = s
        .admin(
            Method::GET,
            "/registries/local/tags?repository=kubepkg/does-not-exist",
            None,
        )
        .await;
    assert_error(status, &v, 404, "tags of a missing repository");
}
