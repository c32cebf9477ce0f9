-- Argo CD health check for cloudquota.io/CloudQuota. deploy/gitops/argocd-cm.yaml embeds this
-- file (regenerate it with `hack/gitops-test.sh --update`; the test fails when they differ).
--
-- Healthy      the last poll of the current generation succeeded; the message names the worst
--              resource. A full quota is NOT Degraded by default: it is an alert, and a
--              Degraded app would block syncs for a reason the manifests cannot fix. Opt in per
--              object with the annotation cloudquota.io/health-degraded-at: Critical|Exhausted.
-- Progressing  the current generation has not been polled yet, or the last poll failed for a
--              transient reason (Throttled, UpstreamError, ...): the operator retries.
-- Degraded     a permanent failure (Stalled=True: bad credentials, permissions, spec, ...), or
--              the opted-in level was reached.
-- Suspended    spec.suspend is true.
--
-- Argo CD runs custom health scripts without the string library: only base, table and
-- os.time/os.date are available, so this script uses nothing else.

local degradedAtAnnotation = "cloudquota.io/health-degraded-at"
local rank = { Unlimited = 0, Ok = 1, Warning = 2, Critical = 3, Exhausted = 4 }
-- Failure reasons no retry fixes; the operator also sets Stalled=True for these.
local permanent = {
  CredentialsMissing = true, CredentialsInvalid = true, AuthFailed = true,
  PermissionDenied = true, InvalidSpec = true, EndpointNotAllowed = true, NotFound = true,
}

local status = obj.status or {}
local spec = obj.spec or {}
local metadata = obj.metadata or {}

local function condition(type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function explain(c)
  local text = c.reason or "Unknown"
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local function summary()
  if status.level == nil then
    return "no quota data yet"
  end
  if status.worst ~= nil and status.worst ~= "" then
    return status.level .. ": " .. status.worst
  end
  return status.level
end

if spec.suspend == true then
  return { status = "Suspended", message = "Polling suspended (spec.suspend); last data " .. summary() }
end

local generation = metadata.generation
if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration ~= generation) then
  return { status = "Progressing", message = "Waiting for the first poll of generation " .. tostring(generation) }
end

local reconciling = condition("Reconciling")
if isTrue(reconciling) then
  return { status = "Progressing", message = explain(reconciling) }
end

local ready = condition("Ready")
local stalled = condition("Stalled")
if isTrue(stalled) or (ready ~= nil and ready.status == "False" and permanent[ready.reason]) then
  -- Ready carries the failure's message; Stalled repeats its reason.
  local failure = stalled
  if ready ~= nil and ready.status == "False" then
    failure = ready
  end
  return { status = "Degraded", message = explain(failure) }
end
if ready == nil or ready.status ~= "True" then
  if ready ~= nil and ready.status == "False" then
    return { status = "Progressing", message = explain(ready) .. " (transient; retrying)" }
  end
  return { status = "Progressing", message = "Waiting for the first poll" }
end

local message = "Quota " .. summary()
local degradedAt = nil
if metadata.annotations ~= nil then
  degradedAt = metadata.annotations[degradedAtAnnotation]
end
if degradedAt ~= nil then
  if degradedAt ~= "Critical" and degradedAt ~= "Exhausted" then
    message = message .. " (annotation " .. degradedAtAnnotation .. "=" .. tostring(degradedAt) ..
      " ignored: want Critical or Exhausted)"
  elseif status.level ~= nil and rank[status.level] ~= nil and rank[status.level] >= rank[degradedAt] then
    return { status = "Degraded", message = message .. " (" .. degradedAtAnnotation .. ": " .. degradedAt .. ")" }
  end
end
return { status = "Healthy", message = message }
