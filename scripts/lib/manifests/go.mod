module portcullis.invalid/scripts/manifests

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0
	k8s.io/api v0.37.2
	k8s.io/apimachinery v0.37.2
	sigs.k8s.io/yaml v1.6.0
)
