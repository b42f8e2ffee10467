#[tokio::main]
async fn main() -> Result<(), vcare_runtime::Error> {
    vcare_runtime::run(|env| async move { audit_seal::function(&env, &vcare_aws::load().await).await }).await
}
