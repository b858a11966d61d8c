{{/*
The controller's namespaced rules (deploy/rbac.yaml's ClusterRole minus nodes; the
helm_chart test checks the two stay equal). Used by the ClusterRole, or with
watchNamespace by a Role in that namespace.
*/}}
{{- define "wasmscaler.namespacedRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "update"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "create", "delete"]
{{- if .Values.secretReferences }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- end }}
{{- range .Values.extraKinds }}
{{- $group := (splitList "/" .apiVersion | len | eq 2) | ternary (splitList "/" .apiVersion | first) "" }}
- apiGroups: [{{ $group | quote }}]
  resources: [{{ .resource | quote }}]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [{{ $group | quote }}]
  resources: [{{ printf "%s/scale" .resource | quote }}]
  verbs: ["get", "update"]
{{- end }}
{{- end -}}
