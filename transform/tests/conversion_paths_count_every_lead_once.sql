{#-
  conversion_paths' leads, converted leads and value add up to those of lead_journeys (per
  project): every lead is on exactly one path.
-#}
{%- set project = has_project_column() %}

with totals as (

    select
        {{ 'project, ' if project }}count(*) as leads,
        sum(case when status_group = 'converted' then 1 else 0 end) as converted_leads,
        coalesce(sum(price_cents), 0) as value_cents
    from {{ ref('lead_journeys') }}
    {{ 'group by project' if project }}

),

on_paths as (

    select
        {{ 'project, ' if project }}sum(leads) as leads,
        sum(converted_leads) as converted_leads,
        sum(value_cents) as value_cents
    from {{ ref('conversion_paths') }}
    {{ 'group by project' if project }}

)

select totals.*, on_paths.leads as leads_on_paths
from totals
left join on_paths on 1 = 1 {{ same_project('on_paths', 'totals') }}
where on_paths.leads is null
    or on_paths.leads <> totals.leads
    or on_paths.converted_leads <> totals.converted_leads
    or on_paths.value_cents <> totals.value_cents
