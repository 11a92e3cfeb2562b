//! ACK's asynchronous tasks: every change returns a `task_id`, and each
//! poll (of the task, or of a deleting cluster) counts it down; when it
//! runs out its effect is applied to the state.

use super::{Node, State};
use crate::server::{Countdown, rand_id};

#[derive(Debug, Clone)]
pub(super) enum Effect {
    Create { fails: bool },
    Delete,
    AddNodes(Vec<Node>),
    RemoveNodes(Vec<String>),
}

#[derive(Debug, Clone)]
pub(super) struct Task {
    pub(super) cluster: String,
    pub(super) countdown: Countdown,
    pub(super) effect: Effect,
    pub(super) state: &'static str,
}

pub(super) fn task(st: &mut State, cluster: &str, polls: u32, effect: Effect) -> String {
    let id = format!("T-{}", rand_id(20));
    st.tasks.insert(
        id.clone(),
        Task {
            cluster: cluster.into(),
            countdown: Countdown::new(polls.max(1)),
            effect,
            state: "running",
        },
    );
    id
}
/// One poll of every running task of cluster `cid`.
pub(super) fn advance(st: &mut State, cid: &str) -> (Vec<Node>, Vec<String>) {
    let due: Vec<(String, Effect)> = st
        .tasks
        .iter_mut()
        .filter(|(_, t)| t.cluster == cid && t.state == "running")
        .filter_map(|(id, t)| t.countdown.tick().then(|| (id.clone(), t.effect.clone())))
        .collect();
    let (mut create, mut delete) = (Vec::new(), Vec::new());
    for (t, effect) in due {
        let (c, d) = apply_effect(st, &t, cid, effect);
        create.extend(c);
        delete.extend(d);
    }
    (create, delete)
}

pub(super) fn apply_effect(
    st: &mut State,
    t: &str,
    cid: &str,
    effect: Effect,
) -> (Vec<Node>, Vec<String>) {
    let mut create = Vec::new();
    let mut delete = Vec::new();
    let mut state = "success";
    match effect {
        Effect::Create { fails } => {
            if let Some(c) = st.clusters.get_mut(cid) {
                if fails {
                    c.state = "failed";
                    state = "fail";
                } else {
                    c.state = "running";
                    for n in &mut c.nodes {
                        n.running = true;
                        create.push(n.clone());
                    }
                }
            }
        }
        Effect::Delete => {
            if let Some(c) = st.clusters.remove(cid) {
                delete.extend(
                    c.nodes
                        .iter()
                        .filter(|n| n.running)
                        .map(|n| n.node_name.clone()),
                );
            }
        }
        Effect::AddNodes(nodes) => {
            if let Some(c) = st.clusters.get_mut(cid) {
                for n in &mut c.nodes {
                    if nodes.iter().any(|x| x.instance_id == n.instance_id) {
                        n.running = true;
                        create.push(n.clone());
                    }
                }
            }
        }
        Effect::RemoveNodes(names) => {
            if let Some(c) = st.clusters.get_mut(cid) {
                c.nodes.retain(|n| !names.contains(&n.node_name));
                delete.extend(names);
            }
        }
    }
    if let Some(task) = st.tasks.get_mut(t) {
        task.state = state;
    }
    (create, delete)
}
