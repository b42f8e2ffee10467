//! `vcare-local serve | token | check` — see the README.

use std::path::PathBuf;

use vcare_local::{DevIssuer, Gateway, GatewayConfig, Jwks, MintClaims, Registry};
use vcare_runtime::{Env, Error};

const USAGE: &str = "usage:
  vcare-local serve                 bootstrap the template's resources and serve (Ctrl-C stops)
  vcare-local check                 bootstrap and build every function, then exit
  vcare-local token --sub ID --clinic ID --roles r1,r2 [--ttl SECONDS]
                                    print a development caller token";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = Env::process();
    let root = env.get("VCARE_ROOT").map(PathBuf::from).unwrap_or(std::env::current_dir()?);
    match args.first().map(String::as_str).unwrap_or("serve") {
        "serve" | "check" => {
            vcare_runtime::init_tracing();
            let config = GatewayConfig::from_env(&env, &root)?;
            let sdk = vcare_aws::load().await;
            let gateway = Gateway::start(config, &Registry::vcare(), &sdk).await?;
            if args.first().map(String::as_str) != Some("check") {
                shutdown_signal().await;
            }
            gateway.stop().await;
            Ok(())
        }
        "token" => {
            let config = GatewayConfig::from_env(&env, &root)?;
            let Jwks::Dev(dir) = &config.jwks else {
                return Err("AUTH_JWKS_URL is set: tokens come from that issuer, not from vcare-local".into());
            };
            let claims = mint_claims(&args[1..])?;
            let token = DevIssuer::new(dir).mint(
                &config.parameters["AuthIssuer"],
                &config.parameters["AuthAudience"],
                &claims,
            )?;
            println!("{token}");
            Ok(())
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}").into()),
    }
}

fn mint_claims(args: &[String]) -> Result<MintClaims, Error> {
    let mut claims = MintClaims { sub: String::new(), clinic_id: None, roles: Vec::new(), ttl_seconds: 3600 };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--sub" => claims.sub = value.clone(),
            "--clinic" => claims.clinic_id = Some(value.clone()),
            "--roles" => {
                claims.roles = value.split(',').map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect()
            }
            "--ttl" => claims.ttl_seconds = value.parse().map_err(|_| format!("--ttl takes seconds, not {value:?}"))?,
            other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
        }
    }
    if claims.sub.is_empty() {
        return Err(format!("--sub is required\n{USAGE}").into());
    }
    Ok(claims)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
