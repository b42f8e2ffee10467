#[tokio::main]
async fn main() -> Result<(), vcare_runtime::Error> {
    vcare_runtime::run(|env| async move { token_issue::function(&env, &vcare_aws::load().await).await }).await
}
