# vcare's entry points. `make run` and `make test` are the two a new user needs.
.PHONY: run stop token test bench fuzz contract-fuzz package sam-package lint ci

run:   ## vcare locally: loopback AWS endpoint + local gateway on 127.0.0.1:3031
	./infra/scripts/run-local.sh

stop:  ## stop what `make run` started
	./infra/scripts/run-local.sh stop

token: ## a development caller token, e.g. make token ARGS="--sub u-doc --clinic c-1 --roles doctor"
	@cargo run --quiet -p vcare-local -- token $(ARGS)

test:  ## the whole test suite (starts its own AWS endpoint on a free port)
	./infra/scripts/test.sh

bench: ## benchmarks (release build; see README "Measurements")
	./infra/scripts/bench.sh $(ARGS)

fuzz:  ## every cargo-fuzz target, VCARE_FUZZ_SECONDS each (default 60); cargo-fuzz installed into .tools
	./infra/scripts/fuzz.sh $(ARGS)

contract-fuzz: ## schemathesis against infra/openapi.yaml on a local gateway (VCARE_FUZZ_EXAMPLES per operation, default 25)
	./infra/scripts/contract-fuzz.sh $(ARGS)

package: ## every function as an arm64 Lambda zip in target/lambda (cargo-lambda + zig, installed into .venv-package)
	./infra/scripts/package.sh $(ARGS)

sam-package: ## sam build (arm64) + sam package into a bucket on the loopback AWS endpoint: no account needed
	./infra/scripts/sam-package.sh $(ARGS)

lint:  ## format, clippy, template, OpenAPI
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	./infra/scripts/lint-template.sh

ci:    ## what .ci/run does
	./.ci/run
