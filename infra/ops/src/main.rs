//! `vcare-ops` — see `vcare_ops::USAGE` and the README's "Operations".

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = vcare_runtime::Env::process();
    let sdk = vcare_aws::load().await;
    match vcare_ops::run(&args, &env, &sdk, &mut std::io::stdin().lock()).await {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("vcare-ops: {e}");
            std::process::exit(2);
        }
    }
}
