//! Which code runs for which template function: the template names a cargo
//! binary (`Metadata.BuildProperties.Binary`); the registry maps that name to
//! the function crate's `function(env, sdk)` constructor, the same one its
//! `main.rs` calls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use vcare_aws::SdkConfig;
use vcare_runtime::{BoxFuture, Env, Error, Function};

type Builder = Box<dyn Fn(Env, SdkConfig) -> BoxFuture<'static, Result<Arc<dyn Function>, Error>> + Send + Sync>;

#[derive(Default)]
pub struct Registry {
    builders: HashMap<String, Builder>,
}

impl Registry {
    /// Every vcare function.
    pub fn vcare() -> Self {
        let mut r = Self::default();
        r.add("health", |env, sdk| async move { health::function(&env, &sdk).await });
        r.add("room-create", |env, sdk| async move { room_create::function(&env, &sdk).await });
        r.add("room-get", |env, sdk| async move { room_get::function(&env, &sdk).await });
        r.add("room-end", |env, sdk| async move { room_end::function(&env, &sdk).await });
        r.add("token-issue", |env, sdk| async move { token_issue::function(&env, &sdk).await });
        r.add("issue-report", |env, sdk| async move { issue_report::function(&env, &sdk).await });
        r.add("image-share", |env, sdk| async move { image_share::function(&env, &sdk).await });
        r.add("history", |env, sdk| async move { history::function(&env, &sdk).await });
        r.add("audit", |env, sdk| async move { audit::function(&env, &sdk).await });
        r.add("audit-export", |env, sdk| async move { audit_export::function(&env, &sdk).await });
        r.add("audit-seal", |env, sdk| async move { audit_seal::function(&env, &sdk).await });
        r.add("jitsi-reservations", |env, sdk| async move { jitsi_reservations::function(&env, &sdk).await });
        r.add("jitsi-events", |env, sdk| async move { jitsi_events::function(&env, &sdk).await });
        r.add("openvidu-events", |env, sdk| async move { openvidu_events::function(&env, &sdk).await });
        r.add("waiting-room", |env, sdk| async move { waiting_room::function(&env, &sdk).await });
        r.add("recordings", |env, sdk| async move { recordings::function(&env, &sdk).await });
        r.add("dial-in", |env, sdk| async move { dial_in::function(&env, &sdk).await });
        r.add("notification-create", |env, sdk| async move { notification_create::function(&env, &sdk).await });
        r.add("notification-get", |env, sdk| async move { notification_get::function(&env, &sdk).await });
        r.add("dispatch", |env, sdk| async move { dispatch::function(&env, &sdk).await });
        r.add("dlr-callback", |env, sdk| async move { dlr_callback::function(&env, &sdk).await });
        r.add("dlr-sweep", |env, sdk| async move { dlr_sweep::function(&env, &sdk).await });
        r.add("webhook-deliver", |env, sdk| async move { webhook_deliver::function(&env, &sdk).await });
        r.add("webhooks", |env, sdk| async move { webhooks::function(&env, &sdk).await });
        r.add("fhir-sync", |env, sdk| async move { fhir_sync::function(&env, &sdk).await });
        r.add("outbox-relay", |env, sdk| async move { outbox_relay::function(&env, &sdk).await });
        r.add("appointment-events", |env, sdk| async move { appointment_events::function(&env, &sdk).await });
        r.add("reminder-scheduler", |env, sdk| async move { reminder_scheduler::function(&env, &sdk).await });
        r.add("preferences", |env, sdk| async move { preferences::function(&env, &sdk).await });
        r.add("templates", |env, sdk| async move { templates::function(&env, &sdk).await });
        r.add("schedules", |env, sdk| async move { schedules::function(&env, &sdk).await });
        r.add("join-links", |env, sdk| async move { join_links::function(&env, &sdk).await });
        r
    }

    /// Registers the constructor of the function built as `binary`.
    pub fn add<B, Fut, F>(&mut self, binary: &str, build: B) -> &mut Self
    where
        B: Fn(Env, SdkConfig) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<F, Error>> + Send + 'static,
        F: Function,
    {
        self.builders.insert(
            binary.to_owned(),
            Box::new(move |env, sdk| {
                let fut = build(env, sdk);
                Box::pin(async move { Ok(Arc::new(fut.await?) as Arc<dyn Function>) })
            }),
        );
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.builders.keys().map(String::as_str)
    }

    pub(crate) async fn build(&self, binary: &str, env: Env, sdk: SdkConfig) -> Result<Arc<dyn Function>, String> {
        let builder = self
            .builders
            .get(binary)
            .ok_or_else(|| format!("no code for binary {binary:?} in the gateway's registry"))?;
        builder(env, sdk).await.map_err(|e| format!("cold start failed: {e}"))
    }
}
